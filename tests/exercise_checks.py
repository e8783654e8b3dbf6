"""Checks every exercise's test file makes the same way (imported by tests/test_exercise_0N_*.py).

* ``fixtures_made_from_their_list``: the wrong-submission fixtures are made from the list in
  ``tests/fixtures/<assignment>/make_fixtures.py`` (``fixturelib.fixtures_for``, cached per hash of their inputs),
  at least three, none committed, and the cached ones are what the list makes now.
* ``grades_as_designed``: real nbgrader in the sandbox through ``autograder.api.check_assignment`` (solution full
  marks, student version 0, each fixture loses exactly its parts, student version in sync), then the autograded
  points and a cap of 3x the solution's time budget (the budget itself is measured by
  ``benchmarks/bench_grading.py``, not by a test on a shared machine).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import fixturelib  # noqa: E402  (tests/fixtures/fixturelib.py)
BUDGET_S = 90  # docs/exercise-contract.md: the solution runs in under 90 s on 2 CPU cores (benchmarks/bench_grading.py measures it)
CAP_S = 3 * BUDGET_S  # what a test holds on a shared machine: contention cannot fail it, a 3x slowdown does


def fixtures_made_from_their_list(assignment: str, tmp_path: Path, min_fixtures: int = 3) -> None:
    folder = ROOT / "tests" / "fixtures" / assignment
    extra = sorted(p.name for p in folder.iterdir() if p.name not in ("make_fixtures.py", "__pycache__"))
    assert not extra, f"{folder} holds generated files {extra}: fixtures are made at test time, not committed"
    cached = fixturelib.fixtures_for(assignment)
    assert cached.parent == fixturelib.CACHE and cached.name.endswith(fixturelib.inputs_hash(assignment))
    _, mod = fixturelib._script(assignment)
    mod.main(out=tmp_path)
    expected = json.loads((cached / "expected.json").read_text())
    assert json.loads((tmp_path / "expected.json").read_text()) == expected
    assert len(expected) >= min_fixtures, f"{assignment}: only {len(expected)} wrong submissions"
    for name, spec in expected.items():
        assert spec["lost"], f"{name} loses nothing: a fixture is a mistake the tests catch"
        fresh = [c.source for c in nbformat.read(tmp_path / name, as_version=4).cells]
        kept = [c.source for c in nbformat.read(cached / name, as_version=4).cells]
        assert fresh == kept, f"{name}: the cached fixture differs from what its list makes now"


def grades_as_designed(assignment: str, artifacts: Path, points: float | None = None) -> dict:
    from autograder.api import check_assignment

    report = artifacts / f"autograder-{assignment}.json"
    check_assignment(assignment, fixturelib.fixtures_for(assignment), report=report)
    summary = json.loads(report.read_text())
    if points is not None:
        assert summary["points"] == points, summary
    assert summary["solution_s"] < CAP_S, (
        f"the solution of {assignment} graded in {summary['solution_s']} s, over the test's cap of {CAP_S} s (3x the "
        f"{BUDGET_S} s budget, generous for a loaded machine); measure it with "
        f"`python benchmarks/bench_grading.py {assignment}`: {summary}")
    return summary


def cells_record_their_results(assignment: str, notebook: str, min_hidden_records: int = 2) -> int:
    """Issue 15's contract for test cells, read from the solution: every autograded test cell records its results
    (`week7.checks.record`), its hidden block holds records only (at least `min_hidden_records` record calls, no
    assert: the grader compares the records with the solution's), and no test cell uses a week7 yardstick
    (`week7.metrics`) that would compute the answer in the student's kernel. Returns the number of cells checked."""
    import ast
    import re

    from autograder import markers
    from autograder.source import load_solution

    nb = load_solution(assignment, notebook)
    cells = [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
             and not c.metadata["nbgrader"].get("solution")]
    for c in cells:
        gid = c.metadata["nbgrader"]["grade_id"]
        hidden = markers.hidden(c.source)
        assert "from week7.checks import" in c.source and "record(" in markers.visible(c.source), gid
        # a helper of the cell that calls record() counts as a record call
        recorders = {"record"} | {f.name for f in ast.walk(ast.parse(c.source)) if isinstance(f, ast.FunctionDef)
                                  and any(isinstance(n, ast.Call) and getattr(n.func, "id", "") == "record"
                                          for n in ast.walk(f))}
        calls = sum(len(re.findall(rf"\b{name}\(", hidden)) for name in recorders)
        assert calls >= min_hidden_records, f"{gid}: {calls} record calls in the hidden block"
        assert not re.search(r"^\s*assert\b|AssertionError", hidden, re.M), f"{gid}: an assert in the hidden block"
        assert "metrics" not in c.source, f"{gid}: a week7.metrics yardstick in a test cell"
    return len(cells)
