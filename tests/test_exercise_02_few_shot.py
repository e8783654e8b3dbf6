"""Exercise 02-few-shot: graded with real nbgrader (solution full marks, student version 0, each fixture loses exactly its
parts, student version in sync and free of solutions, solution under its time budget), and the fixtures in sync
with the notebook they are made from."""

from __future__ import annotations

import importlib.util
import json

import nbformat
import pytest

ASSIGNMENT = "02-few-shot"


def _fixture_module(root):
    spec = importlib.util.spec_from_file_location("make_fixtures_02", root / "tests" / "fixtures" / ASSIGNMENT / "make_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fixtures_are_made_from_the_current_notebook(root, tmp_path):
    """Regenerating the fixtures from exercises/ and solutions/ gives the committed ones (cell sources)."""
    mod = _fixture_module(root)
    mod.main(out=tmp_path)
    committed = root / "tests" / "fixtures" / ASSIGNMENT
    assert json.loads((tmp_path / "expected.json").read_text()) == json.loads((committed / "expected.json").read_text())
    for name in mod.FIXTURES:
        fresh = [c.source for c in nbformat.read(tmp_path / name, as_version=4).cells]
        old = [c.source for c in nbformat.read(committed / name, as_version=4).cells]
        assert fresh == old, f"{name} is stale: run tests/fixtures/{ASSIGNMENT}/make_fixtures.py and commit"


@pytest.mark.nbgrader
@pytest.mark.slow
def test_assignment_grades_as_designed(root, artifacts):
    from autograder.api import check_assignment

    check_assignment(ASSIGNMENT, root / "tests" / "fixtures" / ASSIGNMENT,
                     report=artifacts / f"grading-{ASSIGNMENT}.json")
