"""The autograder's API (generate, grade, check_assignment) with real nbgrader on the demo assignment."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder.api import check_assignment, generate, grade

pytestmark = pytest.mark.nbgrader

FIX = Path(__file__).resolve().parent / "fixtures" / "autograder"
COURSE = FIX / "course"
DEMO_FIXTURES = FIX / "00-demo-fixtures"


@pytest.fixture()
def course(tmp_path) -> Path:
    dest = tmp_path / "course"
    shutil.copytree(COURSE, dest)
    return dest


def test_check_assignment_on_the_demo(artifacts):
    """Solution full marks, release 0, each fixture loses exactly its parts, release in sync, no leaks."""
    check_assignment("00-demo", DEMO_FIXTURES, course_root=COURSE, report=artifacts / "autograder-00-demo.json")
    report = json.loads((artifacts / "autograder-00-demo.json").read_text())
    assert report["points"] == 5.0 and 0 < report["solution_s"] < 90


def test_generate_replaces_the_release_and_clears_solutions(course):
    rel = course / "exercises" / "00-demo"
    (rel / "stale.txt").write_text("left over")
    out = generate("00-demo", course_root=course)
    assert out == rel and not (rel / "stale.txt").exists()
    nb = nbformat.read(rel / "demo.ipynb", as_version=4)
    text = json.dumps(nb)
    for marker in ("BEGIN SOLUTION", "HIDDEN TESTS", "MARK SCHEME", "10**12"):
        assert marker not in text
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    # regenerating gives the committed student version
    assert nbformat.read(rel / "demo.ipynb", as_version=4) == nbformat.read(
        COURSE / "exercises" / "00-demo" / "demo.ipynb", as_version=4)


def test_check_assignment_notices_a_stale_release(course):
    src = course / "solutions" / "00-demo" / "demo.ipynb"
    nb = nbformat.read(src, as_version=4)
    nb.cells[0].source += "\n\nA new sentence nobody regenerated."
    nbformat.write(nb, src)
    with pytest.raises(AssertionError, match="out of sync"):
        check_assignment("00-demo", DEMO_FIXTURES, course_root=course)


def test_check_assignment_notices_a_wrong_expectation(course, tmp_path):
    fx = tmp_path / "fx"
    fx.mkdir()
    shutil.copy(DEMO_FIXTURES / "wrong_add_type.ipynb", fx)
    (fx / "expected.json").write_text(json.dumps({"wrong_add_type.ipynb": {"lost": [], "why": "claims no loss"}}))
    with pytest.raises(AssertionError, match=r"wrong_add_type.ipynb: lost \['demo-add-tests'\], expected \[\]"):
        check_assignment("00-demo", fx, course_root=course)


def test_grade_returns_results_per_student(course):
    sol = course / "solutions" / "00-demo" / "demo.ipynb"
    res = grade("00-demo", {"ann": sol, "bob": DEMO_FIXTURES / "wrong_add_type.ipynb"}, course_root=course)
    assert set(res) == {"ann", "bob"}
    assert res["ann"].total == res["ann"].max_total == 5.0 and res["ann"].status == "graded"
    assert res["bob"].by_grade_id == {"demo-add-tests": (0.0, 2.0), "demo-squares-tests": (3.0, 3.0)}
    assert res["bob"].total == 3.0


def test_bad_names_get_clear_messages(course):
    with pytest.raises(FileNotFoundError, match="no assignment 'nope'"):
        generate("nope", course_root=course)
    with pytest.raises(ValueError, match="student ids"):
        grade("00-demo", {"../x": course}, course_root=course)


def test_alembic_head_read_from_files_matches_alembic():
    """nbg.py answers nbgrader's `alembic heads` from the migration files (saves a subprocess per gradebook)."""
    import os
    import subprocess
    import sys

    import nbgrader.api as nba

    from autograder.nbg import _alembic_head

    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    with nba._temp_alembic_ini("sqlite:////tmp/unused.db") as ini:
        out = subprocess.run(["alembic", "-c", ini, "heads"], capture_output=True, text=True, env=env, check=True)
    assert _alembic_head() == out.stdout.split()[0]


def test_cli_help_lists_every_command():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "autograder", "--help"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0
    for cmd in ("generate", "release", "collect", "autograde", "feedback", "export", "status", "grade-all"):
        assert cmd in out.stdout
