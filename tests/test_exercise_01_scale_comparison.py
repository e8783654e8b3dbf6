"""Exercise 01, scale comparison: graded with real nbgrader, fixtures in sync, answers not importable from week7.

The grading test (`check_assignment`) proves what docs/exercise-contract.md asks: the solution scores full marks within its time
budget, the student version scores 0, each wrong submission in tests/fixtures/01-scale-comparison loses exactly
the parts it breaks, and the committed student version is what nbgrader generates now.
"""

from __future__ import annotations

import functools
from pathlib import Path

import nbformat
import pytest

from autograder import markers
from autograder.source import load_solution
from exercise_checks import fixturelib, fixtures_made_from_their_list, grades_as_designed
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
            # visible: records for the grader, asserts for the student; hidden: records only, no yardstick
            assert visible.count("assert") >= 3 and visible.count("record(") >= 3, first
            assert hidden.count("record(") >= 2 and "assert" not in hidden, first


# What exercise 01 asks for, and the probes that tell it apart from what the package offers.
PAIRS = [("kitten", "sitting"), ("flaw", "lawn"), ("abc", "bc"), ("", "ab"), ("12", "1234"), (" ab", "ab"),
         ("x7", "7"), ("ositive", "positive")]


def _lev(a: str, b: str) -> int:
    d = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return d[-1]


def _sim(a: str, b: str) -> float:
    return 1.0 if not (a or b) else 1.0 - _lev(a, b) / max(len(a), len(b))


def _computes(fn, target) -> bool:
    """True when fn(a, b) equals target(a, b) on every probe pair (or on their stripped forms)."""
    for strip in (False, True):
        try:
            if all(abs(float(fn(a, b)) - target(a.strip() if strip else a, b.strip() if strip else b)) < 1e-9
                   for a, b in PAIRS):
                return True
        except Exception:  # noqa: BLE001 - a function that refuses two strings is not the answer
            pass
    return False


def test_package_offers_no_graded_answer():
    """Nothing in week7 computes levenshtein or edit similarity (exercise 01's answers): no function of the metrics
    and task modules, no task's partial credit, and no definition of that name in the package or the chapters."""
    import inspect
    import re

    from week7 import metrics, tasks, tasks_v2

    found = []
    for mod in (metrics, tasks, tasks_v2):
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn.__module__ == mod.__name__ and any(_computes(fn, t) for t in (_lev, _sim)):
                found.append(f"{mod.__name__}.{name}")
    for registry in (tasks.TASKS, getattr(tasks_v2, "TASKS", {})):
        for task in registry.values():
            if any(_computes(task.partial_credit, t) for t in (_lev, _sim)):
                found.append(f"task {task.name}.partial_credit ({task.partial_name})")
    assert not found, f"the course package computes exercise 01's answer: {found}"
    assert not hasattr(metrics, "edit_distance") and not hasattr(metrics, "edit_similarity")
    defs = re.compile(r"def\s+(levenshtein|edit_distance|edit_similarity|_?lev)\s*\(")
    for path in sorted((ROOT / "src" / "week7").rglob("*.py")) + sorted((ROOT / "chapters").glob("*.md")):
        assert not defs.search(path.read_text()), f"{path.relative_to(ROOT)} defines an edit distance"


# The package's functions as they were until session 5 (the shortcuts' targets): put back for the control below.
def _old_edit_distance(a, b):
    return _lev(a, b)


def _old_edit_similarity(prediction, answer):
    return _sim(prediction.strip(), answer.strip())


def _run_cells(answers: dict[str, str]) -> dict[str, tuple[dict[str, dict], BaseException | None]]:
    """Every test cell of the solution (hidden tests included) in process, with `answers` as the answer cells:
    grade id -> (its records {case: record}, the exception that stopped it or None). No model, no nbgrader."""
    import contextlib
    import io
    import json

    g: dict = {}
    out = {}
    for c in load_solution(ASSIGNMENT).cells:
        meta = c.metadata.get("nbgrader", {})
        gid = meta.get("grade_id")
        if c.cell_type != "code" or gid is None:
            continue
        src = answers.get(gid, c.source) if meta.get("solution") else c.source
        if gid == "scale-comparison-setup":
            src = src.replace("from week7 import lm, tasks, zoo", "from week7 import lm, tasks\nzoo = None")
            src = "\n".join(ln for ln in src.splitlines() if "zoo.FAMILY" not in ln)
        buf, err = io.StringIO(), None
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
                exec(compile(src, gid, "exec"), g)
        except Exception as e:  # noqa: BLE001 - a failing cell is data here
            if not (meta.get("grade") and not meta.get("solution")):
                raise
            err = e
        recs = {}
        for line in buf.getvalue().splitlines():
            if line.startswith("W7RECORD "):
                r = json.loads(line[len("W7RECORD "):])
                recs[r["case"]] = r
        if meta.get("grade") and not meta.get("solution"):
            out[gid] = (recs, err)
    return out


def _lost(reference: dict, run: dict) -> list[str]:
    """The graded cells that lose their points: a case of the reference missing or with another value."""
    from autograder.compare import decode, same

    lost = []
    for gid, ref in reference.items():
        got = run[gid][0]
        for case, r in ref.items():
            if case not in got or same(decode(r["value"]), decode(got[case]["value"]), r["rtol"], r["atol"]):
                lost.append(gid)
                break
    return sorted(lost)


def _answers_of(fixture: str) -> dict[str, str]:
    _, mod = fixturelib._script(ASSIGNMENT)
    lost, _, edits = mod.FIXTURES[fixture]
    answers = fixturelib.solution_answers(ASSIGNMENT, NOTEBOOK)
    for gid, old, new in edits:
        assert answers[gid].count(old) == 1, (fixture, old)
        answers[gid] = answers[gid].replace(old, new)
    return answers


@functools.lru_cache(maxsize=1)
def _reference() -> dict:
    """What the solution records, per test cell (in process: what the grader's reference run records)."""
    reference = {gid: recs for gid, (recs, err) in _run_cells(fixturelib.solution_answers(ASSIGNMENT, NOTEBOOK)).items()}
    assert all(reference.values()), "every test cell of the solution records its results"
    return reference


def test_every_fixture_loses_its_parts_by_comparison():
    """A fast stand-in for the grading test: each listed fixture, run in process, records values that differ from
    the solution's in exactly the test cells it must lose (the grader's comparison, autograder.compare.same)."""
    _, mod = fixturelib._script(ASSIGNMENT)
    wrong = []
    for name, (lost, _, _) in mod.FIXTURES.items():
        got = _lost(_reference(), _run_cells(_answers_of(name)))
        if got != sorted(lost):
            wrong.append(f"{name}: loses {got}, expected {sorted(lost)}")
    assert not wrong, "\n".join(wrong)


SHORTCUTS = ["wrong_shortcut_package_edit_distance.ipynb", "wrong_shortcut_package_edit_similarity.ipynb",
             "wrong_shortcut_package_char_accuracy.ipynb", "wrong_shortcut_package_exact_match.ipynb"]


@pytest.mark.parametrize("fixture", SHORTCUTS)
def test_shortcuts_through_the_package_lose_their_part(fixture, monkeypatch):
    """Each shortcut fixture (its answer cell built on week7.metrics) loses exactly its listed parts when its
    records are compared with the solution's, as the grader compares them; and the two shortcuts to the functions
    the package had until session 5 would have scored full marks with those functions put back, so what makes them
    lose is the package holding no answer, not a slip in the fixture."""
    from week7 import metrics

    _, mod = fixturelib._script(ASSIGNMENT)
    reference = _reference()
    run = _run_cells(_answers_of(fixture))
    assert _lost(reference, run) == sorted(mod.FIXTURES[fixture][0]), {g: str(e)[:200] for g, (_, e) in run.items() if e}
    if "edit_distance" in fixture or "edit_similarity" in fixture:
        err = run["scale-comparison-edit-similarity"][1]
        assert isinstance(err, AssertionError) and "AttributeError" in str(err), err
        monkeypatch.setattr(metrics, "edit_distance", _old_edit_distance, raising=False)
        monkeypatch.setattr(metrics, "edit_similarity", _old_edit_similarity, raising=False)
        assert _lost(reference, _run_cells(_answers_of(fixture))) == [], "the shortcut never scored: the test proves nothing"


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
