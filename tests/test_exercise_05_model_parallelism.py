"""Exercise 05, model parallelism: graded with real nbgrader, fixtures in sync, parallel parts leave no process.

The grading test (`check_assignment`) proves what EXERCISES.md asks: the solution scores full marks within its time
budget, the student version scores 0, each wrong submission in tests/fixtures/05-model-parallelism loses exactly
the parts it breaks, and the committed student version is what nbgrader generates now. The in-process test runs
the solution's parallel test cells (visible and hidden: gloo at world sizes 1, 2 and 4) and checks that no rank
survives them.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import psutil
import pytest

from exercise_checks import fixtures_match_their_script, grades_as_designed

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "05-model-parallelism"
SOLUTION = ROOT / "solutions" / ASSIGNMENT / "model_parallelism.ipynb"
FIXTURES = ROOT / "tests" / "fixtures" / ASSIGNMENT
AUTO_POINTS = 65  # plus 10 graded by hand


@pytest.mark.nbgrader
@pytest.mark.slow
def test_grading_solution_release_and_fixtures(artifacts):
    """Solution full marks within budget, release 0, each fixture loses exactly its parts, release in sync."""
    grades_as_designed(ASSIGNMENT, artifacts, points=AUTO_POINTS)


def test_fixtures_are_in_sync_with_their_script(tmp_path):
    """Regenerating the fixtures from the committed student version gives the committed fixtures."""
    fixtures_match_their_script(ASSIGNMENT, tmp_path)


def test_points_and_cells():
    """75 points: 65 autograded in one cell per part (each opening with 'Check', ending in asserts, with hidden
    tests), 10 for a hand-graded answer with a mark scheme."""
    nb = nbformat.read(SOLUTION, as_version=4)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    auto = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in graded
            if c.cell_type == "code"}
    manual = [c for c in graded if c.cell_type == "markdown"]
    assert sum(auto.values()) == AUTO_POINTS and len(auto) == 10, auto
    assert all(g.startswith("model-parallelism-") for g in auto)
    assert [c.metadata["nbgrader"]["points"] for c in manual] == [10]
    assert "=== BEGIN MARK SCHEME ===" in manual[0].source
    for c in graded:
        if c.cell_type == "code":
            first = c.source.splitlines()[0]
            assert first.startswith('"""Check '), first
            visible, hidden = c.source.split("### BEGIN HIDDEN TESTS")
            assert "assert" in visible and "### END HIDDEN TESTS" in hidden, first
            last = [ln for ln in hidden.split("### END HIDDEN TESTS")[0].splitlines() if ln.strip()]
            assert last, first


def _alive_children() -> set[int]:
    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline()):
                out.add(p.pid)
        except psutil.NoSuchProcess:
            pass
    return out


PARALLEL_TESTS = ("model-parallelism-gpipe", "model-parallelism-tp-linear", "model-parallelism-tp-blocks",
                  "model-parallelism-dp")


def test_parallel_cells_pass_at_world_sizes_2_and_4_and_leave_no_process():
    """Run the solution's code and its pipeline, tensor- and data-parallel test cells (hidden tests included,
    gloo at world sizes 1, 2 and 4) in this process; then no rank may be left alive."""
    before = _alive_children()
    g: dict = {}
    skip = {"gpu-layer-demo", "pipelining-demo", "tp-count-demo", "ddp-demo", "measure",
            "model-parallelism-layer", "model-parallelism-checkpoint", "model-parallelism-amp"}
    ran = []
    for c in nbformat.read(SOLUTION, as_version=4).cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if c.cell_type != "code" or gid is None or gid in skip:
            continue
        exec(compile(c.source, gid, "exec"), g)
        ran.append(gid)
    assert set(PARALLEL_TESTS) <= set(ran), ran
    deadline = time.monotonic() + 3
    while _alive_children() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (_alive_children() - before), "ranks left behind"


def test_a_failing_rank_is_named_and_stopped():
    """A rank that raises inside the student's pipeline is reported by rank and exception, and nothing survives."""
    from week7.distributed import RankError

    before = _alive_children()
    g: dict = {}
    for c in nbformat.read(SOLUTION, as_version=4).cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if gid in ("setup", "gpipe-solution", "stage", "pipeline-runner"):
            exec(compile(c.source, gid, "exec"), g)
    cfg = g["GPTConfig"](vocab_size=16, block_size=8, n_layer=4, n_head=2, d_model=8)
    with pytest.raises(RankError) as info:  # the last rank holds 6 targets in 4 micro-batches: it must refuse
        g["launch"](g["run_gpipe"], 4, cfg, 6, 4, 0, timeout=30)
    assert info.value.rank in (0, 3) and "ValueError" in str(info.value)
    with pytest.raises(RankError) as info:  # 4 blocks over 3 pipeline ranks: Stage refuses on every rank
        g["launch"](g["run_gpipe"], 3, cfg, 6, 3, 0, timeout=30)
    assert "do not split evenly over 3" in str(info.value)
    time.sleep(0.2)
    assert not (_alive_children() - before), "ranks left behind"
