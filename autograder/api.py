"""The autograder's Python API, for the exercises' tests and the command line.

    from autograder.api import generate, grade, check_assignment

    generate("04-sparse-attention")                     # solutions/04-.../ -> exercises/04-.../ (real nbgrader)
    results = grade("04-sparse-attention", {"alice": Path("alice.ipynb")}, workers=2)
    results["alice"].total, results["alice"].by_grade_id   # autograded points only
    check_assignment("04-sparse-attention", Path("tests/fixtures/04-sparse-attention"))

Every call uses real nbgrader (generate_assignment, autograde) in throw-away course roots, so tests never share
a gradebook and never write into the instructor workspace. `course_root` (a folder holding solutions/ and
exercises/) defaults to the repository.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import nbformat

from .markers import HIDDEN, MARK_SCHEME, MARKERS, regions
from .pipeline import Result, make_template, run_batch
from .settings import Settings
from .source import source_notebooks

__all__ = ["Result", "generate", "grade", "check_assignment", "BUDGET_S"]

BUDGET_S = 90.0  # the solution notebook's execution budget on 2 cores (docs/exercise-contract.md)
CAP_FACTOR = 3.0  # tests fail only past CAP_FACTOR * budget; benchmarks/bench_grading.py measures the budget
# cell/notebook metadata that Jupyter front ends change on their own; ignored when comparing releases
VOLATILE_CELL_META = ("execution", "ExecuteTime", "collapsed", "scrolled", "jupyter", "tags_volatile")


def _settings(course_root: Path | None, settings: Settings | None = None) -> Settings:
    s = settings or Settings()
    if course_root is not None:
        s.course_root = Path(course_root).resolve()
    return s


def _check_name(assignment: str, s: Settings) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", assignment or ""):
        raise ValueError(f"assignment {assignment!r}: use the folder name under solutions/, e.g. 04-sparse-attention")
    src = s.solutions / assignment
    if not src.is_dir():
        have = sorted(p.name for p in s.solutions.iterdir() if p.is_dir()) if s.solutions.is_dir() else []
        raise FileNotFoundError(f"no assignment {assignment!r} in {s.solutions} (have: {', '.join(have) or 'none'})")
    return src


def generate(assignment: str, *, course_root: Path | None = None) -> Path:
    """Generate the student version: nbgrader generate_assignment from solutions/<assignment>/ into
    exercises/<assignment>/ (replacing it; outputs cleared). Returns exercises/<assignment>."""
    from .nbg import generate_release, replace_tree

    s = _settings(course_root)
    _check_name(assignment, s)
    with tempfile.TemporaryDirectory(prefix="w7gen-") as tmp:
        out = generate_release(s.solutions, assignment, Path(tmp), s)
        dest = s.exercises / assignment
        dest.parent.mkdir(parents=True, exist_ok=True)
        replace_tree(out, dest)
    return dest


def grade(assignment: str, submissions: Mapping[str, Path], *, workers: int = 2,
          course_root: Path | None = None, settings: Settings | None = None) -> dict[str, Result]:
    """Autograde submissions with real nbgrader, in parallel worker processes.

    submissions: student id -> the assignment's notebook (single-notebook assignments) or a folder of its
    notebooks. Returns student id -> Result (total, max_total, by_grade_id, flags, status). A damaged or hostile
    submission never raises here: it comes back "failed" or "flagged" with its reasons. `settings` overrides the
    limits (autograder.settings.Settings; environment variables W7_* give the defaults).
    """
    s = _settings(course_root, settings)
    _check_name(assignment, s)
    bad = [k for k in submissions if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@-]*", str(k))]
    if bad:
        raise ValueError(f"student ids must be letters, digits, '.', '_', '-', '@' (got {bad[:5]})")
    with tempfile.TemporaryDirectory(prefix="w7tpl-") as tmp:
        tpl = make_template(assignment, s.solutions, Path(tmp), s)
        jobs = [(str(k), str(Path(v).resolve()), None) for k, v in submissions.items()]
        return run_batch(tpl, jobs, s, workers=workers)


def _normalise(nb: dict) -> dict:
    nb = json.loads(json.dumps(nb))
    lang = nb.get("metadata", {}).get("language_info", {})
    lang.pop("version", None)
    for c in nb.get("cells", []):
        for k in VOLATILE_CELL_META:
            c.get("metadata", {}).pop(k, None)
    return nb


def _diff_release(fresh: Path, committed: Path) -> list[str]:
    problems = []
    a = {p.relative_to(fresh).as_posix(): p for p in fresh.rglob("*") if p.is_file()}
    b = {p.relative_to(committed).as_posix(): p for p in committed.rglob("*") if p.is_file()}
    for name in sorted(set(a) | set(b)):
        if name not in b:
            problems.append(f"{name}: generated but not committed")
        elif name not in a:
            problems.append(f"{name}: committed but no longer generated")
        elif name.endswith(".ipynb"):
            na, nb_ = _normalise(json.loads(a[name].read_text())), _normalise(json.loads(b[name].read_text()))
            if na != nb_:
                ca, cb = na.get("cells", []), nb_.get("cells", [])
                where = next((i for i, (x, y) in enumerate(zip(ca, cb)) if x != y), min(len(ca), len(cb)))
                problems.append(f"{name}: differs from a fresh generate_assignment (first at cell {where})")
        elif a[name].read_bytes() != b[name].read_bytes():
            problems.append(f"{name}: differs from the source copy")
    return problems


def _hidden_lines(source_dir: Path) -> set[str]:
    """Lines that appear only inside hidden-test or mark-scheme regions of the source notebooks."""
    hidden, public = set(), set()
    for nb in source_notebooks(source_dir).values():
        for c in nb.cells:
            lines, inner = regions(c.source, HIDDEN)
            inner |= regions(c.source, MARK_SCHEME)[1]
            for i, line in enumerate(lines, 1):
                st = line.strip()
                if len(st) >= 12 and not any(m in st for m in MARKERS):
                    (hidden if i in inner else public).add(st)
    return hidden - public


def check_assignment(assignment: str, fixtures: Path, *, course_root: Path | None = None, workers: int = 2,
                     budget_s: float = BUDGET_S, report: Path | None = None) -> None:
    """Assert what docs/exercise-contract.md asks every exercise to prove, with real nbgrader, in ONE parallel batch:

    - regenerating the student version changes nothing in exercises/<assignment>/ (volatile metadata ignored);
    - the student version holds no solution, hidden test or mark-scheme text;
    - the solution scores full autograded marks; the unmodified student version scores 0 and does not fail;
    - every fixture listed in fixtures/expected.json ({"wrong.ipynb": {"lost": [grade ids], "why": "..."}})
      loses exactly those grade ids and keeps all others;
    - the solution's grading run (execution plus about 1 s of nbgrader) is under CAP_FACTOR * budget_s (a generous
      cap for a loaded machine; benchmarks/bench_grading.py measures each solution against budget_s itself).
    Prints one summary line (times measured); writes a JSON report to `report` when given.
    """
    s = _settings(course_root)
    src = _check_name(assignment, s)
    committed = s.exercises / assignment
    fixtures = Path(fixtures)
    assert committed.is_dir(), (f"{committed} is missing: run `python -m autograder generate {assignment}` and "
                                f"commit exercises/{assignment}/")
    exp_file = fixtures / "expected.json"
    assert exp_file.is_file(), f"{exp_file} is missing: list each fixture's lost grade ids there"
    expected = json.loads(exp_file.read_text())
    assert isinstance(expected, dict) and expected, f"{exp_file}: expected a non-empty object"
    for name, spec in expected.items():
        assert (fixtures / name).exists(), f"{exp_file} lists {name!r} but {fixtures / name} does not exist"
        assert isinstance(spec, dict) and isinstance(spec.get("lost"), list), (
            f"{exp_file}: {name!r} needs {{\"lost\": [grade ids], \"why\": \"...\"}}")
    on_disk = {p.name for p in fixtures.iterdir() if p.suffix == ".ipynb" or p.is_dir()}
    unlisted = sorted(on_disk - set(expected) - {"__pycache__"})
    assert not unlisted, f"fixtures not listed in {exp_file}: {unlisted}"

    with tempfile.TemporaryDirectory(prefix="w7chk-") as tmp:
        tpl = make_template(assignment, s.solutions, Path(tmp), s)
        fresh = Path(tmp) / "release" / assignment
        problems = _diff_release(fresh, committed)
        assert not problems, (f"exercises/{assignment} is out of sync with solutions/{assignment}; run "
                              f"`python -m autograder generate {assignment}` and commit:\n  " + "\n  ".join(problems))
        hidden = _hidden_lines(src)
        for p in sorted(committed.rglob("*.ipynb")):
            text = p.read_text()
            leaked = [m for m in MARKERS if m in text]
            assert not leaked, f"{p} contains {leaked}: the student version must hold no solutions or hidden tests"
            lines = {ln.strip() for c in nbformat.read(p, as_version=4).cells for ln in c.source.splitlines()}
            shown = sorted(hidden & lines)
            assert not shown, f"{p} shows hidden-test/mark-scheme lines: {shown[:3]}"
        ids = sorted(tpl.releases)
        solution = src / f"{ids[0]}.ipynb" if len(ids) == 1 else src
        release = committed / f"{ids[0]}.ipynb" if len(ids) == 1 else committed
        # when the template has just graded the solution to record its results, that run is the solution's grade
        # (every test cell passed and recorded); graded again against its own records otherwise
        fresh_solution = tpl.reference_result
        jobs = ([] if fresh_solution is not None else [("solution", str(solution), None)]) + [
            ("release", str(release), None)]
        names = {}
        for i, name in enumerate(sorted(expected)):
            sid = f"fixture{i:02d}"
            names[sid] = name
            jobs.append((sid, str((fixtures / name).resolve()), None))
        results = run_batch(tpl, jobs, s, workers=workers)
        if fresh_solution is not None:
            results["solution"] = fresh_solution

    sol, rel = results["solution"], results["release"]
    gids = sorted(tpl.autograded)
    assert gids, f"solutions/{assignment} has no autograded cells (graded code cells that are not answers)"
    assert sol.status != "failed" and sol.total == sol.max_total > 0, (
        f"the solution of {assignment} scores {sol.total}/{sol.max_total} "
        f"(lost: {[g for g, (a, m) in sol.by_grade_id.items() if a < m]}; flags: {sol.flags})")
    assert not sol.flags, f"the solution of {assignment} was flagged: {sol.flags}"
    assert rel.status != "failed" and rel.total == 0, (
        f"the unmodified student version of {assignment} scores {rel.total} (status {rel.status}, flags "
        f"{rel.flags}); it must score 0 without failing (every autograded cell should fail on the stubs)")
    wrong = []
    for sid, name in names.items():
        r = results[sid]
        lost = sorted(g for g, (a, m) in r.by_grade_id.items() if a < m)
        want = sorted(expected[name]["lost"])
        unknown = sorted(set(want) - set(gids))
        assert not unknown, f"{exp_file}: {name} lists unknown grade ids {unknown} (autograded ids: {gids})"
        if r.status == "failed" or lost != want:
            wrong.append(f"{name}: lost {lost}, expected {want} (status {r.status}; flags {r.flags})")
    assert not wrong, f"fixtures of {assignment} do not lose exactly their parts:\n  " + "\n  ".join(wrong)
    summary = {"assignment": assignment, "solution_s": round(sol.seconds, 2), "budget_s": budget_s,
               "points": sol.max_total, "per_submission_s": {names.get(k, k): round(v.seconds, 2)
                                                              for k, v in results.items()}}
    print(f"[autograder] {assignment}: solution graded in {sol.seconds:.1f} s (budget {budget_s:.0f} s), "
          f"{len(results)} notebooks, {sol.max_total:g} autograded points")
    if report is not None:
        Path(report).parent.mkdir(parents=True, exist_ok=True)
        Path(report).write_text(json.dumps(summary, indent=2))
    # The budget itself is measured by benchmarks/bench_grading.py (one solution at a time, load average printed);
    # a test on a shared, loaded machine holds only a generous cap, so contention cannot fail it.
    cap_s = CAP_FACTOR * budget_s
    assert sol.seconds < cap_s, (
        f"the solution of {assignment} took {sol.seconds:.1f} s to grade, over this test's cap of {cap_s:.0f} s "
        f"({CAP_FACTOR:g}x the {budget_s:.0f} s budget, generous for a loaded machine); measure it against the budget "
        f"with `python benchmarks/bench_grading.py {assignment}` and make it faster or put slow parts behind a flag")
