"""The grading pipeline: one template gradebook per assignment, then each submission graded by real nbgrader
autograde in a course root of its own (a copy of the template gradebook), in a pool of worker processes.

Workers import nbgrader once and call its converters in-process, so a submission costs its notebook's run time
plus about a second, not the 4-7 s of an `nbgrader` command. Because every submission has its own course root,
workers never share a gradebook; the parent merges results (see workspace.py for the instructor gradebook).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import nbformat

from .settings import Settings


@dataclass
class Result:
    """One student's autograded result for one assignment.

    total / max_total count autograded points only (manually graded answers are excluded); by_grade_id maps each
    autograded cell's grade id to (score, max points). status: "graded", "flagged" (graded, but the submission was
    damaged or hostile: see flags) or "failed" (could not be graded: see flags). infrastructure: the failure was
    the grader's or the environment's, not the submission's (kernel.py): the next autograde run grades it again.
    errors: grade id -> the first error line of that cell (failed tests, instructor cells that raised).
    """

    student: str
    assignment: str
    total: float = 0.0
    max_total: float = 0.0
    by_grade_id: dict[str, tuple[float, float]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    status: str = "graded"
    seconds: float = 0.0
    autograded_dir: str | None = None  # where the executed notebooks were kept (when asked for)
    # what nbgrader wrote into the private gradebook, to copy into the instructor's (workspace.py)
    gradebook: dict | None = None
    errors: dict[str, str] = field(default_factory=dict)
    infrastructure: bool = False

    def to_json(self) -> dict:
        d = asdict(self)
        d["by_grade_id"] = {k: list(v) for k, v in self.by_grade_id.items()}
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Result":
        d = dict(d)
        d["by_grade_id"] = {k: (float(v[0]), float(v[1])) for k, v in d.get("by_grade_id", {}).items()}
        return cls(**d)


@dataclass
class Template:
    """What every grading job needs to know about an assignment, computed once in the parent."""

    assignment: str
    source_parent: str  # the folder holding <assignment>/ source notebooks
    db: str  # template gradebook (holds the assignment after generate_assignment)
    releases: dict[str, dict]  # notebook id -> released notebook (as a dict)
    autograded: dict[str, tuple[str, float]]  # grade id -> (notebook id, points) of autograded test cells
    others: dict[str, set[str]] = field(default_factory=dict)  # other assignments of the course -> their grade ids
    solution_names: set[str] = field(default_factory=set)  # names the release's answer cells bind (kernel.py)
    # what the solution recorded ({notebook: {grade id: {case: record}}}, compare.py); None: this run makes them
    references: dict | None = None
    # the solution's own Result when the references were made by this template (not read from the cache)
    reference_result: "Result | None" = None
    reference_error: str | None = None  # why the solution could not be graded (then nothing can be)


def autograded_cells(source_dir: Path) -> dict[str, tuple[str, float]]:
    """grade id -> (notebook id, points) for every autograded cell (a graded code cell that is not an answer)."""
    from .source import source_notebooks

    out: dict[str, tuple[str, float]] = {}
    for stem, nb in source_notebooks(source_dir).items():
        for c in nb.cells:
            m = c.get("metadata", {}).get("nbgrader", {})
            if m.get("grade") and not m.get("solution") and c.cell_type == "code":
                out[m["grade_id"]] = (stem, float(m.get("points", 0)))
    return out


def make_template(assignment: str, source_parent: Path, work: Path, settings: Settings,
                  db: Path | None = None, references: bool = True) -> Template:
    """Run nbgrader generate_assignment once; the gradebook it fills (`db`, default work/gradebook.db: give the
    instructor's to register the assignment there too) is copied to be every grading job's starting gradebook.
    `references`: also load (or make, by grading the solution once) what the solution records (compare.py)."""
    import sqlite3

    from .nbg import generate_release

    release = generate_release(Path(source_parent), assignment, work, settings, db=db)
    if db is not None:
        src, dst = sqlite3.connect(db, timeout=60), sqlite3.connect(work / "gradebook.db")
        with dst:
            src.backup(dst)
        src.close()
        dst.close()
    releases = {p.stem: json.loads(p.read_text()) for p in sorted(release.glob("*.ipynb"))}
    from .integrity import course_grade_ids
    from .kernel import _names

    names = set().union(*(_names("".join(c["source"]) if isinstance(c["source"], list) else c["source"], bound=True)
                          for nb in releases.values() for c in nb["cells"]
                          if c["cell_type"] == "code" and c.get("metadata", {}).get("nbgrader", {}).get("solution")))
    tpl = Template(assignment=assignment, source_parent=str(Path(source_parent).resolve()),
                   db=str(work / "gradebook.db"), releases=releases,
                   autograded=autograded_cells(Path(source_parent) / assignment),
                   others=course_grade_ids(Path(source_parent), exclude=assignment), solution_names=names)
    if references:
        try:
            tpl.references = solution_references(tpl, settings, work)
        except NoReference as e:  # every submission of this batch fails with the reason, none is guessed
            tpl.reference_error = str(e)
            print(f"[autograder] {e}", flush=True)
    return tpl


class NoReference(RuntimeError):
    """The solution could not be graded, so there is nothing to compare submissions with."""


def solution_references(tpl: Template, settings: Settings, work: Path) -> dict:
    """What the instructor's solution records for every test cell ({notebook: {grade id: {case: record}}}).

    Made by grading the solution notebook(s) once in a clean sandboxed kernel, like any submission but with
    nothing to compare with, and cached in compare.cache_dir() per compare.cache_key (the assignment's sources
    and data, the course package, library versions), so a batch pays for it only when one of those changed.
    """
    from . import compare
    from .source import source_notebooks

    src = Path(tpl.source_parent) / tpl.assignment
    key = compare.cache_key(src)
    cached = compare.load_cached(tpl.assignment, key)
    if cached is not None:
        return cached
    t0 = time.monotonic()
    print(f"[autograder] {tpl.assignment}: grading the solution once to record its results (cached after)",
          flush=True)
    sol = work / "w7-reference-solution"
    sol.mkdir(parents=True, exist_ok=True)
    for stem, nb in source_notebooks(src).items():
        nbformat.write(nb, sol / f"{stem}.ipynb")
    keep = work / "w7-reference-autograded"
    res = run_batch(tpl, [("w7-reference", str(sol), str(keep))], settings, workers=1)["w7-reference"]
    lost = [g for g, (a, m) in res.by_grade_id.items() if a < m]
    if res.status == "failed" or lost:
        raise NoReference(
            f"the solution of {tpl.assignment} did not grade cleanly, so submissions have nothing to be compared "
            f"with: status {res.status}, lost {lost}, errors {({g: e for g, e in res.errors.items() if g in lost})}; "
            + "; ".join(res.flags[:3]))
    refs = compare.references_from(keep)
    missing = sorted(g for g in tpl.autograded if not refs.get(tpl.autograded[g][0], {}).get(g))
    if missing:
        raise NoReference(f"{tpl.assignment}: test cell(s) {missing} record nothing: every autograded test "
                              f"cell must hand its results to the grader with week7.checks.record (compare.py)")
    compare.save_cached(tpl.assignment, key, refs)
    tpl.reference_result = res
    print(f"[autograder] {tpl.assignment}: solution recorded "
          f"{sum(len(c) for per in refs.values() for c in per.values())} cases in {time.monotonic() - t0:.1f} s",
          flush=True)
    return refs


def _zero(tpl: Template, student: str, flags: list[str], status: str, infrastructure: bool = False) -> Result:
    by = {gid: (0.0, pts) for gid, (_, pts) in tpl.autograded.items()}
    return Result(student=student, assignment=tpl.assignment, total=0.0, max_total=sum(p for _, p in by.values()),
                  by_grade_id=by, flags=flags, status=status, infrastructure=infrastructure)


INFRA = "infrastructure failure (the next autograde run grades it again): "


def _errors(folder: Path) -> dict[str, str]:
    """grade id -> first error line, for every cell with a grade id that raised, in the autograded notebooks."""
    from .kernel import error_line

    out: dict[str, str] = {}
    for p in sorted(folder.glob("*.ipynb")):
        for c in nbformat.read(p, as_version=4).cells:
            gid = c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            line = error_line(c) if gid and c.cell_type == "code" else ""
            if line:
                out[gid] = line
    return out


def grade_one(tpl: Template, student: str, submission: str, settings: Settings, keep: str | None = None,
              threads: int = 1) -> Result:
    """Grade one submission (a notebook or a folder) with nbgrader autograde in a private course root.

    Never raises for a bad submission: returns a Result with status "failed" or "flagged" and the reasons.
    `keep`: a folder to copy the autograded notebooks into (the instructor's autograded/<student>/<assignment>/).
    """
    from nbgrader.api import Gradebook

    from .integrity import prepare
    from .nbg import autograde

    t0 = time.monotonic()
    if tpl.reference_error:
        return _zero(tpl, student, [INFRA + tpl.reference_error], "failed", True)
    releases = {k: nbformat.from_dict(v) for k, v in tpl.releases.items()}
    try:
        prep = prepare(Path(submission), releases, tpl.others, tpl.assignment)
    except Exception as e:  # noqa: BLE001
        return _zero(tpl, student, [f"could not read the submission: {type(e).__name__}: {e}"], "failed", True)
    flags = list(prep.flags)
    if not prep.notebooks:
        res = _zero(tpl, student, flags, "failed")
        res.seconds = time.monotonic() - t0
        return res
    with tempfile.TemporaryDirectory(prefix="w7grade-") as tmp:
        work = Path(tmp)
        (work / "source").symlink_to(tpl.source_parent, target_is_directory=True)
        shutil.copy2(tpl.db, work / "gradebook.db")
        sub_dir = work / "submitted" / student / tpl.assignment
        sub_dir.mkdir(parents=True)
        for nb_id, nb in prep.notebooks.items():
            nbformat.write(nb, sub_dir / f"{nb_id}.ipynb")
        ts = Path(submission) / "timestamp.txt" if Path(submission).is_dir() else None
        if ts is not None and ts.is_file():
            shutil.copy2(ts, sub_dir / "timestamp.txt")
        from . import kernel, sandbox

        box = work / "sandbox-work"  # the kernel's only writable folder: the student's files and the data files
        shutil.copytree(sub_dir, box, ignore=shutil.ignore_patterns("timestamp.txt"))
        src = Path(tpl.source_parent) / tpl.assignment
        for p in src.rglob("*"):
            rel = p.relative_to(src)
            if p.is_file() and p.suffix not in (".ipynb", ".md") and p.name != "probes.py" and not any(
                    part.startswith(".") or part == "__pycache__" for part in rel.parts):
                (box / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, box / rel)
        try:
            plan = sandbox.check(settings.sandbox)
        except sandbox.SandboxUnavailable as e:
            res = _zero(tpl, student, [INFRA + str(e)] + flags, "failed", True)
            res.seconds = time.monotonic() - t0
            return res
        if plan.mode == "none":
            flags.append("unsandboxed: graded without a sandbox (W7_SANDBOX=none)")
        sandbox.prepare_dirs(plan, box)
        kernel.CONTEXT.clear()
        kernel.CONTEXT.update(work=str(box), plan=plan if plan.mode != "none" else None, settings=settings,
                              threads=threads, notebook_timeout=settings.notebook_timeout_s, flags=[],
                              infra=[], solution_names=tpl.solution_names,
                              references=tpl.references, release_sources=_release_sources(tpl),
                              probe_records=_probes(src, prep.notebooks, plan, settings, threads))
        try:
            autograde(work, tpl.assignment, student, settings)
        except BaseException as e:  # noqa: BLE001 - nbgrader raises NbGraderException and others
            if isinstance(e, KeyboardInterrupt):
                raise
            res = _zero(tpl, student, [INFRA + f"nbgrader autograde failed: {type(e).__name__}: {e}"] + flags,
                        "failed", True)
            res.seconds = time.monotonic() - t0
            return res
        by: dict[str, tuple[float, float]] = {}
        raw: dict = {"notebooks": {}}
        with Gradebook("sqlite:///" + str(work / "gradebook.db"), settings.course_id) as gb:
            sub = gb.find_submission(tpl.assignment, student)
            raw["timestamp"] = sub.timestamp.isoformat() if sub.timestamp else None
            for snb in sub.notebooks:
                raw["notebooks"][snb.name] = {
                    "late_submission_penalty": snb.late_submission_penalty,
                    "grades": {g.name: {"auto_score": g.auto_score, "needs_manual_grade": g.needs_manual_grade}
                               for g in snb.grades},
                    "comments": {c.name: c.auto_comment for c in snb.comments},
                }
                for g in snb.grades:
                    if g.name in tpl.autograded:
                        score = g.auto_score if g.auto_score is not None else 0.0
                        by[g.name] = (float(score), float(g.max_score))
        flags += list(dict.fromkeys(kernel.CONTEXT.get("flags", [])))
        infra = [INFRA + why for why in dict.fromkeys(kernel.CONTEXT.get("infra", []))]
        errors = _errors(work / "autograded" / student / tpl.assignment)
        for gid, (_, pts) in tpl.autograded.items():
            by.setdefault(gid, (0.0, pts))
        if keep:
            from .nbg import replace_tree
            Path(keep).parent.mkdir(parents=True, exist_ok=True)
            replace_tree(work / "autograded" / student / tpl.assignment, Path(keep))
    total = sum(s for s, _ in by.values())
    res = Result(student=student, assignment=tpl.assignment, total=total,
                 max_total=sum(m for _, m in by.values()), by_grade_id=by, flags=infra + flags,
                 status="failed" if infra else "flagged" if flags else "graded", seconds=time.monotonic() - t0,
                 autograded_dir=keep, gradebook=raw, errors=errors, infrastructure=bool(infra))
    return res


def _release_sources(tpl: Template) -> dict[str, dict[str, str]]:
    """{notebook: {grade id: the student version's source of that test cell}} (compare.visible_cases)."""
    out: dict[str, dict[str, str]] = {}
    for stem, nb in tpl.releases.items():
        for c in nb.get("cells", []):
            gid = c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if gid:
                src = c.get("source", "")
                out.setdefault(stem, {})[gid] = "".join(src) if isinstance(src, list) else src
    return out


def _probes(source_dir: Path, notebooks: dict, plan, settings: Settings, threads: int) -> dict:
    """Records of the assignment's external probes (probes.py beside the source: autograder/probe.py), per
    notebook; {} when the assignment has none."""
    if not (source_dir / "probes.py").is_file():
        return {}
    from . import probe

    return {nb_id: probe.run(source_dir, nb, plan=plan if plan.mode != "none" else None, settings=settings,
                             threads=threads) for nb_id, nb in notebooks.items()}


def _worker_init() -> None:
    from . import runs

    runs.note("worker")  # the next autograde run ends this worker if the run that started it is killed
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    import nbgrader.converters  # noqa: F401 - pay the import once per worker


def run_batch(tpl: Template, jobs: Iterable[tuple[str, str, str | None]], settings: Settings, *, workers: int = 2,
              on_result: Callable[[Result], None] | None = None) -> dict[str, Result]:
    """Grade (student, submission, keep_dir) jobs in `workers` processes; call on_result as each finishes."""
    jobs = list(jobs)
    results: dict[str, Result] = {}
    if not jobs:
        return results
    from .sandbox import check

    check(settings.sandbox)  # SandboxUnavailable (with what to install) before anything runs unsandboxed
    workers = max(1, min(workers, len(jobs)))
    threads = max(1, (os.cpu_count() or 2) // workers)
    ctx = mp.get_context("fork")  # workers inherit imported nbgrader; no __main__ re-import
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init) as pool:
        futs = {pool.submit(grade_one, tpl, s, sub, settings, keep, threads): s for s, sub, keep in jobs}
        for fut in as_completed(futs):
            student = futs[fut]
            try:
                res = fut.result()
            except Exception as e:  # noqa: BLE001 - a worker died: that submission fails, the batch goes on
                res = _zero(tpl, student, [INFRA + f"grading process failed: {type(e).__name__}: {e}",
                                           traceback.format_exc(limit=2)], "failed", True)
            results[student] = res
            if on_result:
                on_result(res)
    return results
