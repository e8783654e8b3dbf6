"""The family's evidence (src/week7/data/family/) is what tools/family/evidence.py makes from the shipped models.

* The findings, figures' numbers and the README's generated section follow from the committed table by the script's
  fixed rules (a hand edit of any of them fails here). They are compared as data, not bytes: numbers within a
  relative 1e-6, and a number printed in the README within one unit of its last digit, since the last bits of a
  float (and so, at a rounding boundary, a printed digit) differ between machines.
* The smallest model's rows of the committed table are reproduced by evaluating it again from the shipped files
  (greedy decoding: the same outputs on any CPU; tolerance 0.02 for the rare argmax tie in float16 weights).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools.family import evidence  # noqa: E402

DATA = ROOT / "src" / "week7" / "data" / "family"


REL, ABS = 1e-6, 1e-9  # numbers: |generated - committed| <= ABS + REL * |committed|; structure and words exact


def _stale(what: str, diffs: list[str]) -> str:
    return (f"{what} is stale ({len(diffs)} differences beyond rel {REL:g} / abs {ABS:g}; first: "
            + "; ".join(diffs[:3]) + "): run python -m tools.family.evidence and commit")


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
    """Compared as data, not bytes: figures' binary arrays decoded, numbers within REL/ABS, printed numbers in
    text within one unit of their last digit (the last bits of a float differ between machines)."""
    findings = evidence.figures(table, tmp_path)
    committed = json.loads((DATA / "findings.json").read_text())
    # through JSON, as main() writes it (tuples become lists, numpy scalars plain numbers)
    diffs = evidence.data_differences(json.loads(json.dumps(findings)), committed, REL, ABS)
    assert not diffs, _stale("findings.json", diffs)
    for fig in ("emergence", "icl_shots", "cot", "loss"):
        fresh = evidence.figure_data((tmp_path / f"{fig}.json").read_text())
        kept = evidence.figure_data((DATA / f"{fig}.json").read_text())
        diffs = evidence.data_differences(fresh, kept, REL, ABS)
        assert not diffs, _stale(f"{fig}.json", diffs)
    readme = (DATA / "README.md").read_text()
    assert evidence.BEGIN in readme and evidence.END in readme, "README.md lost its generated section's markers"
    block = readme[readme.index(evidence.BEGIN) + len(evidence.BEGIN):readme.index(evidence.END)].strip()
    diffs = evidence.data_differences(evidence.summary_markdown(table, findings).strip(), block, REL, ABS)
    assert not diffs, _stale("README's generated section", diffs)


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


def test_the_comparison_ignores_float_bits_and_catches_changes():
    """The tolerance above hides only what differs between machines (the last bits, a rounding boundary)."""
    import base64

    import numpy as np

    raw = json.loads((DATA / "loss.json").read_text())
    kept = evidence.figure_data(json.dumps(raw))

    def with_y2(value) -> list:
        fig = json.loads(json.dumps(raw))
        y = fig["data"][0]["y"]
        a = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]).copy()
        a[2] = value(a[2])
        y["bdata"] = base64.b64encode(a.tobytes()).decode()
        return evidence.data_differences(evidence.figure_data(json.dumps(fig)), kept, REL, ABS)

    assert with_y2(lambda v: np.nextafter(v, np.inf)) == []
    assert with_y2(lambda v: v * (1 + 10 * REL)) and with_y2(lambda v: v + 1e-3)
    assert evidence.data_differences(kept["data"][:-1], kept["data"], REL, ABS)
    assert evidence.data_differences({"name": "fit: 1.64 N^-0.062"}, {"name": "fit: 1.65 N^-0.062"}) == []
    assert evidence.data_differences({"name": "fit: 1.64 N^-0.062"}, {"name": "fit: 1.66 N^-0.062"})
    assert evidence.data_differences({"name": "fit: 1.64 N^-0.062"}, {"name": "fits: 1.64 N^-0.062"})
    assert evidence.data_differences({"x": 1}, {"x": 1, "y": 2}) and evidence.data_differences([1.0], ["1.0"])
