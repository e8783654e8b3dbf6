"""Exercise 01, scale comparison: graded with real nbgrader, fixtures in sync, contracts not importable from week7.

The grading test (`check_assignment`) proves what docs/exercise-contract.md asks: the solution scores full marks within its time
budget, the student version scores 0, each wrong submission in tests/fixtures/01-scale-comparison loses exactly
the parts it breaks, and the committed student version is what nbgrader generates now.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder import markers
from autograder.source import load_solution
from exercise_checks import fixtures_made_from_their_list, grades_as_designed
from visible_checks import visible_tests_catch_each_fixture

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "01-scale-comparison"
NOTEBOOK = "scale_comparison.ipynb"  # the solution: load_solution(ASSIGNMENT), read from solutions/{ASSIGNMENT}/scale_comparison.md
FIXTURES = ROOT / "tests" / "fixtures" / ASSIGNMENT


def _cells(nb: nbformat.NotebookNode) -> dict[str, str]:
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get(
        "grade_id")}


@pytest.mark.nbgrader
@pytest.mark.slow
def test_grading_solution_release_and_fixtures(artifacts):
    """Solution full marks within budget, release 0, each fixture loses exactly its parts, release in sync."""
    grades_as_designed(ASSIGNMENT, artifacts, points=22.0)  # autograded points; 8 more are graded by hand


def test_fixtures_are_in_sync_with_their_script(tmp_path):
    """The fixtures are made from their list at test time (at least three, none committed), cached per input hash."""
    fixtures_made_from_their_list(ASSIGNMENT, tmp_path)


def test_points_and_manual_parts():
    """30 points in all: 22 autograded in separate cells per part, 8 for four hand-graded answers with a rubric."""
    nb = load_solution(ASSIGNMENT)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    auto = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in graded
            if c.cell_type == "code"}
    manual = [c for c in graded if c.cell_type == "markdown"]
    assert sum(auto.values()) == 22 and len(auto) == 7, auto
    assert sum(c.metadata["nbgrader"]["points"] for c in manual) == 8 and len(manual) == 4
    for c in manual:
        assert c.metadata["nbgrader"]["solution"] and "Mark scheme" in c.source, c.metadata["nbgrader"]["grade_id"]
    for c in graded:
        if c.cell_type == "code":
            first = c.source.splitlines()[0]
            assert first.startswith('"""Check '), first
            assert not markers.problems(c.source), (first, markers.problems(c.source))
            visible, hidden = markers.visible(c.source), markers.hidden(c.source)
            assert visible.count("assert") >= 3 and hidden.count("assert") >= 2, first


@pytest.mark.parametrize("grade_id, substitutes", [
    ("scale-comparison-exact-match", {"normalize_answer": "week7.metrics:exact_match",
                                      "exact_match": "week7.metrics:exact_match"}),
    ("scale-comparison-edit-similarity", {"levenshtein": "week7.metrics:edit_distance",
                                          "edit_similarity": "week7.metrics:edit_similarity"}),
])
def test_package_metrics_do_not_pass_the_graded_cells(grade_id, substitutes):
    """The course package holds no graded answer: its metrics (other contracts) fail the exercise's test cells."""
    import importlib

    import numpy as np

    g: dict = {"np": np}
    for name, target in substitutes.items():
        module, attr = target.split(":")
        g[name] = getattr(importlib.import_module(module), attr)
    with pytest.raises((AssertionError, TypeError, ValueError)):
        exec(compile(_cells(load_solution(ASSIGNMENT))[grade_id], grade_id, "exec"), g)


def test_solution_cells_pass_their_visible_and_hidden_tests_in_process():
    """A fast check (no model, no nbgrader): the solution's functions pass every test cell but the evaluation sweep."""
    cells = load_solution(ASSIGNMENT).cells
    g: dict = {}
    for c in cells:
        if c.cell_type != "code":
            continue
        src = c.source
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "scale-comparison-setup":
            src = src.replace("from week7 import lm, tasks, zoo", "from week7 import lm, tasks\nzoo = None")
            src = "\n".join(ln for ln in src.splitlines() if "zoo.FAMILY" not in ln)
        elif gid is None:
            continue  # the sweep, fits on the family, figures and the online part need the family's models
        exec(compile(src, gid, "exec"), g)


def test_visible_tests_catch_every_listed_mistake():
    """Each fixture (one likely mistake, listed in its make_fixtures.py) fails exactly its cells' VISIBLE tests, with
    an assertion message, in process; the solution passes them all (no model, no nbgrader)."""
    assert visible_tests_catch_each_fixture(ASSIGNMENT, "scale_comparison.ipynb") >= 15
