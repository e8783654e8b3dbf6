"""The family's evidence (src/week7/data/family/) is what tools/family/evidence.py makes from the shipped models.

* The findings, figures' numbers and the README's generated section follow from the committed table by the script's
  fixed rules (a hand edit of any of them fails here).
* The smallest model's rows of the committed table are reproduced by evaluating it again from the shipped files
  (greedy decoding: the same outputs on any CPU; tolerance 0.02 for the rare argmax tie in float16 weights).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools.family import evidence  # noqa: E402

DATA = ROOT / "src" / "week7" / "data" / "family"


def _close(a, b, tol=1e-6):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol * max(1.0, abs(a))
    return a == b


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    path = DATA / "evidence.csv"
    assert path.is_file(), f"{path} is missing: run python -m tools.family.evidence"
    return pd.read_csv(path)


def test_table_covers_every_shipped_model_and_row(table):
    from tools.family.train import MANIFEST_EVAL
    from week7 import zoo

    shipped = [m for m in zoo.FAMILY if m in zoo.manifest()["models"]]
    assert sorted(set(table.model)) == sorted(shipped)
    for m in shipped:
        rows = table[table.model == m]
        assert sorted(zip(rows.task, rows.k, rows["style"])) == sorted(MANIFEST_EVAL), m
        entry = zoo.manifest()["models"][m]
        assert set(rows.params) == {entry["params"]} and set(rows.tokens) == {entry["tokens"]}
    assert ((table.exact_lo <= table.exact + 1e-9) & (table.exact <= table.exact_hi + 1e-9)).all()


def test_findings_and_readme_follow_from_the_table(table, tmp_path):
    findings = evidence.figures(table, tmp_path)
    committed = json.loads((DATA / "findings.json").read_text())
    assert _close(findings, committed, tol=1e-6), "findings.json is stale: run python -m tools.family.evidence"
    for fig in ("emergence", "icl_shots", "cot", "loss"):
        assert (tmp_path / f"{fig}.json").read_text() == (DATA / f"{fig}.json").read_text(), f"{fig}.json is stale"
    readme = (DATA / "README.md").read_text()
    block = readme[readme.index(evidence.BEGIN):readme.index(evidence.END)]
    assert evidence.summary_markdown(table, findings) in block, "README's generated section is stale"


def test_smallest_model_rows_reproduce(table, tmp_path):
    from week7 import zoo

    smallest = [m for m in zoo.FAMILY if m in zoo.manifest()["models"]][0]
    n = int(table.n.iloc[0])
    fresh = pd.DataFrame(evidence.evaluate_model(smallest, n, use_cache=False, cache_dir=tmp_path))
    assert (fresh.source == "evaluated").all()
    old = table[table.model == smallest]
    merged = fresh.merge(old, on=["task", "k", "style"], suffixes=("", "_committed"))
    assert len(merged) == len(old) == len(fresh)
    for col in ("exact", "partial"):
        worst = (merged[col] - merged[col + "_committed"]).abs().max()
        assert worst <= 0.02, merged[["task", "k", "style", col, col + "_committed"]]
