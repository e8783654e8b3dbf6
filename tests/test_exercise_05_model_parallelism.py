"""Exercise 05, model parallelism: graded with real nbgrader, fixtures in sync, parallel parts leave no process.

The grading test (`check_assignment`) proves what docs/exercise-contract.md asks: the solution scores full marks within its time
budget, the student version scores 0, each wrong submission in tests/fixtures/05-model-parallelism loses exactly
the parts it breaks, and the committed student version is what nbgrader generates now. The in-process test runs
the solution's parallel test cells (visible and hidden: gloo at world sizes 1, 2 and 4) and checks that no rank
survives them; each listed mistake (tests/fixtures/05-model-parallelism/make_fixtures.py) runs against the VISIBLE
tests, whose message must name its case, rank and pass.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from autograder import markers
from autograder.source import load_solution
from exercise_checks import fixtures_made_from_their_list, grades_as_designed

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "05-model-parallelism"
NOTEBOOK = "model_parallelism.ipynb"  # the solution: load_solution(ASSIGNMENT), read from solutions/{ASSIGNMENT}/model_parallelism.md
FIXTURES = ROOT / "tests" / "fixtures" / ASSIGNMENT
AUTO_POINTS = 65  # plus 10 graded by hand


@pytest.mark.nbgrader
@pytest.mark.slow
def test_grading_solution_release_and_fixtures(artifacts):
    """Solution full marks within budget, release 0, each fixture loses exactly its parts, release in sync."""
    grades_as_designed(ASSIGNMENT, artifacts, points=AUTO_POINTS)


def test_fixtures_are_in_sync_with_their_script(tmp_path):
    """The fixtures are made from their list at test time (at least three, none committed), cached per input hash."""
    fixtures_made_from_their_list(ASSIGNMENT, tmp_path)


def test_points_and_cells():
    """75 points: 65 autograded in one cell per part (each opening with 'Check', visible asserts and records,
    a hidden block of records only), 10 for four hand-graded answers, each with its own mark scheme."""
    nb = load_solution(ASSIGNMENT)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    auto = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in graded
            if c.cell_type == "code"}
    manual = [c for c in graded if c.cell_type == "markdown"]
    assert sum(auto.values()) == AUTO_POINTS and len(auto) == 10, auto
    assert all(g.startswith("model-parallelism-") for g in auto)
    assert [(c.metadata["nbgrader"]["grade_id"], c.metadata["nbgrader"]["points"]) for c in manual] == [
        ("model-parallelism-analysis-ckpt", 3), ("model-parallelism-analysis-autocast", 3),
        ("model-parallelism-analysis-scaling", 2), ("model-parallelism-analysis-combine", 2)]
    for c in manual:
        assert "=== BEGIN MARK SCHEME ===" in c.source and "=== END MARK SCHEME ===" in c.source
        assert c.metadata["nbgrader"]["points"] == float(c.source.split("=== BEGIN MARK SCHEME ===")[1].split()[0])
    for c in graded:
        if c.cell_type == "code":
            first = c.source.splitlines()[0]
            assert first.startswith('"""Check '), first
            assert not markers.problems(c.source), (first, markers.problems(c.source))
            assert markers.HIDDEN[0] in c.source and "assert" in markers.visible(c.source), first
            hidden = markers.hidden(c.source)
            # the grader compares what the cells record with the solution's records: the hidden block only records
            assert hidden.count("record(") >= 2 and "assert" not in hidden, first
            assert markers.visible(c.source).count("record(") >= 1, first


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
    for c in load_solution(ASSIGNMENT).cells:
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


def test_no_raw_citation_role_or_missing_file_in_the_student_version():
    """MyST roles do not render in a notebook, and a hub student has no docs/ or benchmarks/ folder."""
    text = "\n".join(c.source for c in nbformat.read(ROOT / "exercises" / ASSIGNMENT / NOTEBOOK,
                                                     as_version=4).cells)
    for bad in ("{cite", "docs/", "benchmarks/", "../shared"):
        assert bad not in text, bad
    assert "## References" in text and "Shoeybi" in text


def _mistakes() -> dict:
    spec = importlib.util.spec_from_file_location("make_fixtures_05", FIXTURES / "make_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.MISTAKES


GIVEN = ("setup", "timeline-tools", "stage", "pipeline-runner", "tp-runner", "dp-runner", "saved-bytes")


def _visible_failures(edits: dict[str, list[tuple[str, str]]], gids: list[str]) -> dict[str, str | None]:
    """Run the given helpers and every answer cell (with `edits`), then the VISIBLE part of the test cells `gids`:
    grade id -> the message of the first failing visible assertion (None: all passed)."""
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in load_solution(ASSIGNMENT).cells}
    g: dict = {}
    for gid, c in cells.items():
        meta = c.metadata.get("nbgrader", {})
        if c.cell_type != "code" or not (gid in GIVEN or meta.get("solution")):
            continue
        src = c.source.replace("viz.setup()", "")
        for old, new in edits.get(gid, []):
            assert src.count(old) == 1, (gid, old)
            src = src.replace(old, new)
        exec(compile(src, gid, "exec"), g)
    out = {}
    for gid in gids:
        try:
            exec(compile(markers.visible(cells[gid].source), gid, "exec"), g)
        except Exception as err:  # noqa: BLE001  (a wrong answer may raise anything; the test reports it)
            out[gid] = f"{type(err).__name__}: {err}"
        else:
            out[gid] = None
    return out


@pytest.mark.parametrize("fixture", sorted(_mistakes()))
def test_each_mistake_fails_a_visible_test_that_names_it(fixture):
    """Every listed mistake fails the VISIBLE part of each test cell whose points it loses, with a message naming the
    case (world size, rank, pass) and the expected and actual values."""
    m = _mistakes()[fixture]
    before = _alive_children()
    failures = _visible_failures({m["cell"]: m["edits"]}, m["lost"])
    assert all(failures.values()), f"{fixture}: some visible tests it loses points in pass: {failures}"
    gid, text = m["visible"]
    assert text in failures[gid], f"{fixture}: the visible failure of {gid} does not say {text!r}: {failures[gid]}"
    time.sleep(0.2)
    assert not (_alive_children() - before), "ranks left behind"


def test_a_failing_rank_is_named_and_stopped():
    """A rank that raises inside the student's pipeline is reported by rank and exception, and nothing survives."""
    from week7.distributed import RankError

    before = _alive_children()
    g: dict = {}
    for c in load_solution(ASSIGNMENT).cells:
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
