"""Each listed mistake is caught by a VISIBLE test (imported by tests/test_exercise_0N_*.py).

``visible_tests_catch_each_fixture(assignment)`` runs, in this process, the test cells of every wrong-submission
fixture made from ``tests/fixtures/<assignment>/make_fixtures.py`` as the student sees them (the fixture is the generated student version, so
its test cells hold no hidden tests), with the fixture's answers, and asserts that exactly the cells listed in
``expected.json`` fail, each with an ``AssertionError`` whose message says what went wrong; and that the solution's
answers pass every visible test. Cells that are neither answers, tests nor locked given code (the sweeps over the
model family, figures) are skipped: no test cell depends on them. Real nbgrader grading of the same fixtures is
``exercise_checks.grades_as_designed``.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import nbformat

from autograder import markers
from exercise_checks import fixturelib
from autograder.source import load_solution

ROOT = Path(__file__).resolve().parents[1]


def _visible_failures(nb: nbformat.NotebookNode, answers: dict[str, str] | None = None) -> dict[str, BaseException]:
    """grade id -> the exception of each graded test cell that fails (answers: grade id -> code to use instead)."""
    g: dict = {"__name__": "__main__"}
    failed: dict[str, BaseException] = {}
    first = True
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        meta = c.metadata.get("nbgrader", {})
        if not meta and not first:
            continue  # a sweep or a figure: ungraded, and no test depends on it
        first = False
        gid = meta.get("grade_id", "setup")
        src = answers.get(gid, c.source) if answers and meta.get("solution") else c.source
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(compile(src, gid, "exec"), g)
        except Exception as e:  # noqa: BLE001  (a test cell's failure is data here)
            if meta.get("grade") and not meta.get("solution"):
                failed[gid] = e
            else:
                raise AssertionError(f"cell {gid} (not a test) raised {type(e).__name__}: {e}") from e
    return failed


def visible_tests_catch_each_fixture(assignment: str, notebook: str) -> int:
    """Assert the contract above; returns the number of fixtures checked."""
    folder = fixturelib.fixtures_for(assignment)
    expected = json.loads((folder / "expected.json").read_text())
    solution = load_solution(assignment, notebook)
    answers = {c.metadata["nbgrader"]["grade_id"]: markers.answer(c.source) for c in solution.cells
               if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}
    release = nbformat.read(ROOT / "exercises" / assignment / notebook, as_version=4)
    failed = _visible_failures(release, answers)
    assert not failed, f"{assignment}: the solution fails visible tests: {({k: str(v) for k, v in failed.items()})}"
    problems = []
    for name, spec in expected.items():
        nb = nbformat.read(folder / name, as_version=4)
        assert not any(markers.HIDDEN[0] in c.source for c in nb.cells), f"{name} holds hidden tests"
        failed = _visible_failures(nb)
        if sorted(failed) != sorted(spec["lost"]):
            problems.append(f"{name}: visible tests fail in {sorted(failed)}, expected exactly {sorted(spec['lost'])}")
        for gid, e in failed.items():
            if type(e) is not AssertionError or len(str(e)) < 20:
                problems.append(f"{name}: {gid} fails with {type(e).__name__}: {str(e)[:200]!r}, not an assertion "
                                f"whose message names the case, the expected and the actual value")
    assert not problems, f"{assignment}:\n  " + "\n  ".join(problems)
    return len(expected)
