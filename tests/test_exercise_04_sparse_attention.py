"""Exercise 04, sparse attention: graded with real nbgrader, fixtures in sync, the answers not importable.

The grading test (`check_assignment`) proves what docs/exercise-contract.md asks: the solution scores full marks within its
time budget, the student version scores 0, each wrong submission in tests/fixtures/04-sparse-attention loses
exactly the parts it breaks, and the committed student version is what nbgrader generates now. The other tests
are fast: the notebook's structure and points, each listed mistake (tests/fixtures/04-sparse-attention/
make_fixtures.py) against the VISIBLE tests, whose message must name it, and the solution's functions against
their test cells in process.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import nbformat
import pytest

from autograder import markers, probe
from autograder.source import load_solution
from exercise_checks import fixtures_made_from_their_list, grades_as_designed

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "04-sparse-attention"
NOTEBOOK = "sparse_attention.ipynb"  # the solution: load_solution(ASSIGNMENT), read from solutions/{ASSIGNMENT}/sparse_attention.md
FIXTURES = ROOT / "tests" / "fixtures" / ASSIGNMENT
ANSWERS = ("sparse_mask", "pattern_nnz", "masked_attention", "block_sparse_attention")


def _graded(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")}


@pytest.mark.nbgrader
@pytest.mark.slow
def test_grading_solution_release_and_fixtures(artifacts):
    """Solution full marks within budget, release 0, each fixture loses exactly its parts, release in sync."""
    grades_as_designed(ASSIGNMENT, artifacts, points=16.0)  # autograded points; 6 more are graded by hand


def test_fixtures_are_in_sync_with_their_script(tmp_path):
    """The fixtures are made from their list at test time (at least three, none committed), cached per input hash."""
    fixtures_made_from_their_list(ASSIGNMENT, tmp_path)


def test_points_and_manual_parts():
    """22 points: 16 autograded in six cells, 6 in three hand-graded answers that carry a mark scheme."""
    graded = _graded(load_solution(ASSIGNMENT))
    auto = {g: c.metadata["nbgrader"]["points"] for g, c in graded.items() if c.cell_type == "code"}
    manual = {g: c for g, c in graded.items() if c.cell_type == "markdown"}
    assert auto == {"sparse-attention-mask": 3, "sparse-attention-nnz": 2, "sparse-attention-dense": 2,
                    "sparse-attention-blocksparse": 4, "sparse-attention-grad": 3, "sparse-attention-memory": 2}
    assert sorted(manual) == ["sparse-attention-cost", "sparse-attention-gpu", "sparse-attention-leak"]
    for gid, c in manual.items():
        assert c.metadata["nbgrader"]["points"] == 2 and c.metadata["nbgrader"]["solution"], gid
        assert "=== BEGIN MARK SCHEME ===" in c.source and "=== END MARK SCHEME ===" in c.source, gid
    for gid, c in graded.items():
        if c.cell_type != "code":
            continue
        meta = c.metadata["nbgrader"]
        assert meta["locked"] and not meta["solution"] and meta["schema_version"] == 3, gid
        assert c.source.splitlines()[0].startswith('"""Check that'), gid
        assert not markers.problems(c.source), (gid, markers.problems(c.source))
        visible, hidden = markers.visible(c.source), markers.hidden(c.source)
        assert visible.count("assert") >= 2 and hidden.count("record(") >= 2, gid
        assert "assert" not in hidden and "_ref" not in hidden, f"{gid}: hidden blocks only record (no yardstick)"
        assert "reference_attention" not in c.source, f"{gid}: no masked reference from the package"
        assert c.source.rstrip().endswith(markers.HIDDEN[1]), f"{gid} must end with its hidden records"


def test_no_raw_citation_role_or_missing_file_in_the_student_version():
    """MyST roles do not render in a notebook, and a hub student has no docs/ or benchmarks/ folder."""
    text = "\n".join(c.source for c in nbformat.read(ROOT / "exercises" / ASSIGNMENT / NOTEBOOK,
                                                     as_version=4).cells)
    for bad in ("{cite", "docs/", "benchmarks/", "../shared"):
        assert bad not in text, bad
    assert "## References" in text and "Child, R." in text


def test_answers_are_not_importable_from_the_package():
    """The course package holds the infrastructure only: none of the functions students write is in week7."""
    import week7
    import week7.attention as attention

    for name in ANSWERS:
        assert not hasattr(attention, name) and not hasattr(week7, name), name
    text = (ROOT / "src" / "week7" / "attention.py").read_text()
    assert "j % s == 0" not in text and "% s" not in text, "the pattern's formula belongs to the students"
    # masked attention with an arbitrary mask is masked_attention (Task 2): the package's yardstick takes none
    assert list(inspect.signature(attention.reference_attention).parameters) == ["q", "k", "v", "is_causal"]
    chapter = (ROOT / "chapters" / "06-efficient-attention.md").read_text()
    assert "j % k == 0" not in chapter and "(j <= i)" not in chapter, "chapter 06 must not build Task 1a's mask"


def _namespace(edits: dict[str, list[tuple[str, str]]] | None = None) -> dict:
    """The setup, the slide's mask and every answer cell (with `edits` applied) run in a fresh namespace."""
    g: dict = {}
    for c in load_solution(ASSIGNMENT).cells:
        meta = c.metadata.get("nbgrader", {})
        if c.cell_type != "code":
            continue
        src = c.source
        if "RUN_SWEEP = False" in src:
            src = src.replace("viz.setup()", "")
        elif "def slide_mask" in src:
            src = src.split("\n\n\nt0 = time.perf_counter()")[0]
        elif not meta.get("solution"):
            continue
        for old, new in (edits or {}).get(meta.get("grade_id"), []):
            assert src.count(old) == 1, (meta.get("grade_id"), old)
            src = src.replace(old, new)
        exec(compile(src, meta.get("grade_id", "cell"), "exec"), g)
    return g


def _visible_failures(g: dict) -> dict[str, str | None]:
    """grade id -> the message of the first failing visible assertion of each test cell (None: all passed)."""
    out = {}
    for gid, c in _graded(load_solution(ASSIGNMENT)).items():
        if c.cell_type != "code":
            continue
        try:
            exec(compile(markers.visible(c.source), gid, "exec"), g)
        except Exception as err:  # noqa: BLE001  (a wrong answer may raise anything; the test reports it)
            out[gid] = f"{type(err).__name__}: {err}"
        else:
            out[gid] = None
    return out


def _mistakes() -> dict:
    spec = importlib.util.spec_from_file_location("make_fixtures_04", FIXTURES / "make_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.MISTAKES


@pytest.mark.parametrize("fixture", sorted(_mistakes()))
def test_each_mistake_fails_a_visible_test_that_names_it(fixture):
    """Every listed mistake fails the VISIBLE part of exactly the test cells whose points it loses, with a message
    naming the case and the expected and actual values; the other visible tests still pass."""
    m = _mistakes()[fixture]
    failures = _visible_failures(_namespace({m["cell"]: m["edits"]}))
    failed = sorted(gid for gid, msg in failures.items() if msg)
    if m["visible"] is None:  # right values: only the grader's probe sees it (tests/test_autograder_probe.py runs it)
        assert failed == [], f"{fixture}: visible tests failed in {failed}: {failures}"
        assert m["probe"] in {p["grade_id"] for p in probe.load_probes(ROOT / "solutions" / ASSIGNMENT)}
        assert m["lost"] == [m["probe"]]
        return
    assert failed == sorted(m["lost"]), f"{fixture}: visible tests failed in {failed}, it loses {m['lost']}: {failures}"
    gid, text = m["visible"]
    assert text in failures[gid], f"{fixture}: the visible failure of {gid} does not say {text!r}: {failures[gid]}"


def test_the_solution_passes_every_visible_test():
    """The control for the test above: with no mistake, every visible test cell passes."""
    assert _visible_failures(_namespace()) == dict.fromkeys(
        ["sparse-attention-mask", "sparse-attention-nnz", "sparse-attention-dense", "sparse-attention-blocksparse",
         "sparse-attention-grad", "sparse-attention-memory"])


def test_solution_passes_its_tests_in_process():
    """A fast check without nbgrader: the setup, the answers and every test cell (visible and hidden) pass."""
    cells = load_solution(ASSIGNMENT).cells
    g: dict = {}
    for c in cells:
        meta = c.metadata.get("nbgrader", {})
        if c.cell_type != "code":
            continue
        src = c.source
        if "RUN_SWEEP = False" in src:
            src = src.replace("viz.setup()", "")
        elif not (meta.get("solution") or meta.get("grade") or "def slide_mask" in src):
            continue  # figures, the cost sweep and the GPU part: not needed for the contracts
        if "def slide_mask" in src:
            src = src.split("\n\n\nt0 = time.perf_counter()")[0]
        exec(compile(src, meta.get("grade_id", "cell"), "exec"), g)
    for name in ANSWERS:
        assert callable(g[name]), name


@pytest.mark.parametrize("grade_id, broken", [
    ("sparse-attention-dense", "masked_attention = lambda q, k, v, mask: reference_attention(q, k, v, is_causal=True)"),
    ("sparse-attention-blocksparse", "block_sparse_attention = lambda q, k, v, w, s, g, block_size=128: "
                                     "reference_attention(q, k, v, is_causal=True)"),
    ("sparse-attention-memory", "block_sparse_attention = lambda q, k, v, w, s, g, block_size=128: "
                                "masked_attention(q, k, v, sparse_mask(q.shape[2], w, s, g))"),
])
def test_test_cells_fail_on_plausible_shortcuts(grade_id, broken):
    """The package's dense attention (causal, no pattern) and a dense-in-disguise answer fail the graded cells."""
    cells = load_solution(ASSIGNMENT).cells
    g: dict = {}
    for c in cells:
        meta = c.metadata.get("nbgrader", {})
        src = c.source
        if c.cell_type != "code":
            continue
        if "RUN_SWEEP = False" in src:
            src = src.replace("viz.setup()", "")
        elif "def slide_mask" in src:
            src = src.split("\n\n\nt0 = time.perf_counter()")[0]
        elif not meta.get("solution"):
            continue
        exec(compile(src, meta.get("grade_id", "cell"), "exec"), g)
    exec(broken, g)
    with pytest.raises(AssertionError):
        exec(compile(_graded(load_solution(ASSIGNMENT))[grade_id].source, grade_id, "exec"), g)
