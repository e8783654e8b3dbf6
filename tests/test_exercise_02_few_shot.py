"""Exercise 02-few-shot: graded with real nbgrader (solution full marks, student version 0, each fixture loses exactly its
parts, student version in sync and free of solutions, solution under its time budget), and the fixtures in sync
with the notebook they are made from."""

from __future__ import annotations


import pytest

from exercise_checks import cells_record_their_results, fixtures_made_from_their_list, grades_as_designed
from visible_checks import visible_tests_catch_each_fixture

ASSIGNMENT = "02-few-shot"


def test_fixtures_are_made_from_the_current_notebook(tmp_path):
    """The fixtures are made from their list at test time (at least three, none committed), cached per input hash."""
    fixtures_made_from_their_list(ASSIGNMENT, tmp_path)


@pytest.mark.nbgrader
@pytest.mark.slow
def test_assignment_grades_as_designed(artifacts):
    grades_as_designed(ASSIGNMENT, artifacts)


def test_visible_tests_catch_every_listed_mistake():
    """Each fixture (one likely mistake, listed in its make_fixtures.py) fails exactly its cells' VISIBLE tests, with
    an assertion message, in process; the solution passes them all (no model, no nbgrader)."""
    assert visible_tests_catch_each_fixture(ASSIGNMENT, "few_shot.ipynb") >= 15


def test_test_cells_only_record():
    """Every test cell records its results for the grader, its hidden block holds only records, no yardstick."""
    assert cells_record_their_results(ASSIGNMENT, "few_shot.ipynb") == 8
