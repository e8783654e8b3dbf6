"""Checks every exercise's test file makes the same way (imported by tests/test_exercise_0N_*.py).

* ``fixtures_match_their_script``: the wrong-submission fixtures in ``tests/fixtures/<assignment>`` are what
  their ``make_fixtures.py`` writes now from the committed student version and solution (cell sources and
  ``expected.json``), so a notebook change cannot leave stale fixtures behind.
* ``grades_as_designed``: real nbgrader in the sandbox through ``autograder.api.check_assignment`` (solution full
  marks, student version 0, each fixture loses exactly its parts, student version in sync), then the autograded
  points and a cap of 3x the solution's time budget (the budget itself is measured by
  ``benchmarks/bench_grading.py``, not by a test on a shared machine).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 90  # docs/exercise-contract.md: the solution runs in under 90 s on 2 CPU cores (benchmarks/bench_grading.py measures it)
CAP_S = 3 * BUDGET_S  # what a test holds on a shared machine: contention cannot fail it, a 3x slowdown does


def fixtures_match_their_script(assignment: str, tmp_path: Path, min_fixtures: int = 3) -> None:
    folder = ROOT / "tests" / "fixtures" / assignment
    spec = importlib.util.spec_from_file_location(f"make_fixtures_{assignment[:2]}", folder / "make_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(out=tmp_path)
    committed = json.loads((folder / "expected.json").read_text())
    assert json.loads((tmp_path / "expected.json").read_text()) == committed
    assert len(committed) >= min_fixtures, f"{assignment}: only {len(committed)} wrong submissions"
    for name in committed:
        fresh = [c.source for c in nbformat.read(tmp_path / name, as_version=4).cells]
        kept = [c.source for c in nbformat.read(folder / name, as_version=4).cells]
        assert fresh == kept, f"{name} is stale: run tests/fixtures/{assignment}/make_fixtures.py and commit"


def grades_as_designed(assignment: str, artifacts: Path, points: float | None = None) -> dict:
    from autograder.api import check_assignment

    report = artifacts / f"autograder-{assignment}.json"
    check_assignment(assignment, ROOT / "tests" / "fixtures" / assignment, report=report)
    summary = json.loads(report.read_text())
    if points is not None:
        assert summary["points"] == points, summary
    assert summary["solution_s"] < CAP_S, (
        f"the solution of {assignment} graded in {summary['solution_s']} s, over the test's cap of {CAP_S} s (3x the "
        f"{BUDGET_S} s budget, generous for a loaded machine); measure it with "
        f"`python benchmarks/bench_grading.py {assignment}`: {summary}")
    return summary
