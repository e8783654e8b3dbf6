"""Tests for src/week7/data/gpt3_results.csv, GPT-3's scores by task, setting and model size (Table H.1)."""

from __future__ import annotations

from importlib.resources import files

import pandas as pd
import pytest

SIZES = {"Small": 125e6, "Medium": 350e6, "Large": 760e6, "XL": 1.3e9, "2.7B": 2.7e9, "6.7B": 6.7e9,
         "13B": 13e9, "175B": 175e9}

# The 175B scores as printed in the main text of Brown et al. (2020), transcribed separately from Table H.1:
# (zero-shot, one-shot, few-shot). Tables 3.2 (cloze), 3.3 (QA), 3.4 (translation, multi-BLEU),
# 3.5 (Winograd),
# 3.6 (common sense), 3.7 (reading comprehension), 3.8 (SuperGLUE, few-shot only), 3.9 (arithmetic),
# 3.10 (word scrambling), Section 3.9.3 (SAT) and 3.8 (ANLI round 3, few-shot).
MAIN_TEXT_175B = {
    "LAMBADA": (76.2, 72.5, 86.4),
    "HellaSwag": (78.9, 78.1, 79.3),
    "StoryCloze": (83.2, 84.7, 87.7),
    "Natural Questions": (14.6, 23.0, 29.9),
    "TriviaQA": (64.3, 68.0, 71.2),
    "Fr->En (WMT14)": (21.2, 33.7, 39.2),
    "Ro->En (WMT16)": (19.9, 38.6, 39.5),
    "Winograd": (88.3, 89.7, 88.6),
    "Winogrande": (70.2, 73.2, 77.7),
    "ARC (Challenge)": (51.4, 53.2, 51.5),
    "ARC (Easy)": (68.8, 71.2, 70.1),
    "OpenBookQA": (57.6, 58.8, 65.4),
    "SQuAD v2": (59.5, 65.4, 69.8),
    "DROP": (23.6, 34.3, 36.5),
    "SuperGLUE (average)": (None, None, 73.2),  # dev split; 71.8 in Table 3.8 is the test server's score
    "ANLI round 3": (None, None, 40.2),
    "2-digit addition": (76.9, 99.6, 100.0),
    "Symbol insertion": (8.26, 45.4, 67.2),
    "Anagrams 2": (8.91, 25.9, 39.7),
    "Reversed words": (0.09, 0.48, 0.44),
    "SAT analogies": (53.7, 59.1, 65.2),
}


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    return pd.read_csv(files("week7") / "data" / "gpt3_results.csv")


def test_every_task_has_every_size_and_setting_once(results):
    assert set(results.task) == set(MAIN_TEXT_175B)
    counts = results.groupby(["task", "setting", "model"]).size()
    assert (counts == 1).all(), counts[counts != 1]
    assert len(results) == len(MAIN_TEXT_175B) * 3 * 8
    assert set(results.setting) == {"zero-shot", "one-shot", "few-shot"}


def test_sizes_and_parameter_counts_match_table_2_1(results):
    for model, params in SIZES.items():
        got = results.loc[results.model == model, "params"]
        assert len(got) == 3 * len(MAIN_TEXT_175B) and ((got - params).abs() < 1e-6 * params).all(), model


def test_scores_are_in_range_and_cite_the_table(results):
    assert results.score.between(0, 100).all()
    assert results.score.notna().all()
    assert (results.source == "Brown et al. 2020, Table H.1").all()


@pytest.mark.parametrize("task", sorted(MAIN_TEXT_175B))
def test_175b_column_agrees_with_the_main_text(results, task):
    got = results[(results.task == task) & (results.model == "175B")].set_index("setting").score
    for setting, want in zip(("zero-shot", "one-shot", "few-shot"), MAIN_TEXT_175B[task]):
        if want is not None:
            assert got[setting] == pytest.approx(want), (task, setting)


def test_largest_model_beats_smallest_few_shot_on_most_tasks(results):
    few = results[results.setting == "few-shot"].pivot_table(index="task", columns="model", values="score")
    assert (few["175B"] > few["Small"]).mean() > 0.9
