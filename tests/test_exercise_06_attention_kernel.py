"""Exercise 06, attention kernel (Triton): graded with real nbgrader, fixtures in sync, every mistake named.

The grading test (`grades_as_designed`) proves what the exercise contract asks: the solution scores full marks
within its time budget, the student version scores 0, each wrong submission in tests/fixtures/06-attention-kernel
loses exactly the parts it breaks, and the committed student version is what nbgrader generates now. In the
sandbox there is no GPU, so the kernels run in Triton's interpreter (the sandbox sets TRITON_INTERPRET=1). The
other tests run in this process, in the interpreter too: the notebook's structure and points, each listed mistake
(tests/fixtures/06-attention-kernel/make_fixtures.py) against the VISIBLE tests, whose message must name it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import nbformat
import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")  # before the notebook's cells import triton in this process

from autograder.source import load_solution  # noqa: E402
from exercise_checks import fixturelib, fixtures_made_from_their_list, grades_as_designed  # noqa: E402
from visible_checks import _visible_failures, visible_tests_catch_each_fixture  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "06-attention-kernel"
NOTEBOOK = "attention_kernel.ipynb"
FIXTURES = ROOT / "tests" / "fixtures" / ASSIGNMENT
ANSWERS = ("softmax", "flash_attention_forward", "layout_to_indices", "block_sparse_forward",
           "BlockSparseAttention", "block_sparse_attention")
AUTO = {"attention-kernel-softmax": 3, "attention-kernel-flash": 3, "attention-kernel-lse": 1,
        "attention-kernel-memory": 1, "attention-kernel-blocksparse": 3, "attention-kernel-visits": 1,
        "attention-kernel-grad": 2, "attention-kernel-grad-kernels": 1}

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                                reason="triton is not installed: pip install -r requirements.txt (it pins 3.7.1)")


def _graded(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")}


@pytest.mark.nbgrader
@pytest.mark.slow
def test_grading_solution_release_and_fixtures(artifacts):
    """Solution full marks within budget, release 0, each fixture loses exactly its parts, release in sync."""
    grades_as_designed(ASSIGNMENT, artifacts, points=15.0)  # autograded points; 4 more are graded by hand


def test_fixtures_are_in_sync_with_their_script(tmp_path):
    """The fixtures are made from their list at test time (at least five, none committed), cached per input hash."""
    fixtures_made_from_their_list(ASSIGNMENT, tmp_path, min_fixtures=5)


def test_points_and_manual_parts():
    """19 points: 15 autograded in eight cells, 4 in two hand-graded answers that carry a mark scheme."""
    graded = _graded(load_solution(ASSIGNMENT))
    auto = {g: c.metadata["nbgrader"]["points"] for g, c in graded.items() if c.cell_type == "code"}
    manual = {g: c for g, c in graded.items() if c.cell_type == "markdown"}
    assert auto == AUTO
    assert sorted(manual) == ["attention-kernel-cost", "attention-kernel-gpu"]
    for gid, c in manual.items():
        assert c.metadata["nbgrader"]["points"] == 2 and c.metadata["nbgrader"]["solution"], gid
        assert "=== BEGIN MARK SCHEME ===" in c.source and "=== END MARK SCHEME ===" in c.source, gid
    for gid, c in graded.items():
        if c.cell_type != "code":
            continue
        meta = c.metadata["nbgrader"]
        assert meta["locked"] and not meta["solution"] and meta["schema_version"] == 3, gid
        assert c.source.splitlines()[0].startswith('"""Check that'), gid
        visible, hidden = c.source.split("### BEGIN HIDDEN TESTS")
        # the grader compares what the cells record with the solution's records: the hidden block only records
        assert visible.count("assert") >= 2 and visible.count("record(") >= 1, gid
        assert hidden.count("record(") >= 2 and "assert" not in hidden, gid
        assert hidden.rstrip().endswith("### END HIDDEN TESTS"), f"{gid} must end with its hidden records"
    intro = load_solution(ASSIGNMENT).cells[0].source
    assert "19 points in total: 15 autograded" in intro and "4 for two written answers" in intro


def test_no_raw_citation_role_or_missing_file_and_not_exercise_04s_answer():
    """The student version: no MyST role, no repo-only path, and not exercise 04's pattern formula in given code."""
    text = "\n".join(c.source for c in nbformat.read(ROOT / "exercises" / ASSIGNMENT / NOTEBOOK, as_version=4).cells)
    for bad in ("{cite", "docs/", "benchmarks/", "../shared", "j % s == 0", "% s"):
        assert bad not in text, bad
    assert "## References" in text and "Dao, T." in text
    assert "TRITON_INTERPRET" in text, "the student must be told how the kernels run without a GPU"


def test_answers_are_not_importable_from_the_package():
    """The course package holds infrastructure only: none of the functions students write is in week7."""
    import week7
    import week7.attention as attention

    for name in ANSWERS:
        assert not hasattr(attention, name) and not hasattr(week7, name), name


def _mistakes() -> dict:
    spec = importlib.util.spec_from_file_location("make_fixtures_06", FIXTURES / "make_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.MISTAKES


def test_visible_tests_catch_every_listed_mistake():
    """Each fixture fails exactly the visible test cells it loses, with assertions; the solution passes them all."""
    assert visible_tests_catch_each_fixture(ASSIGNMENT, NOTEBOOK) >= 5


@pytest.mark.parametrize("fixture", sorted(_mistakes()))
def test_each_mistake_is_named_by_its_visible_test(fixture):
    """The visible failure's message names the mistake (the case, and what to look at)."""
    m = _mistakes()[fixture]
    failures = _visible_failures(nbformat.read(fixturelib.fixtures_for(ASSIGNMENT) / fixture, as_version=4))
    gid, text = m["visible"]
    assert gid in failures, f"{fixture}: the visible test {gid} passed; failed: {sorted(failures)}"
    assert text in str(failures[gid]), f"{fixture}: the failure of {gid} does not say {text!r}: {failures[gid]}"


def test_interpreter_is_on_in_the_notebook_without_a_gpu():
    """The setup cell turns the interpreter on before importing triton when there is no CUDA device."""
    setup = next(c.source for c in load_solution(ASSIGNMENT).cells if c.cell_type == "code")
    assert setup.index('os.environ.setdefault("TRITON_INTERPRET", "1")') < setup.index("import triton")
