"""The instructor workspace (outside version control): gradebook, submitted/, autograded/, feedback/, exports.

    <workspace>/gradebook.db                     nbgrader's gradebook (plus the table w7_journal, see below)
    <workspace>/backups/gradebook-<time>.db      a consistent copy taken before every autograde run
    <workspace>/submitted/<student>/<assignment>/     what students handed in (never modified by grading)
    <workspace>/submitted-history/<student>/<assignment>/<time>/   earlier submissions replaced by a resubmission
    <workspace>/autograded/<student>/<assignment>/    executed notebooks (nbgrader's layout)
    <workspace>/feedback/<student>/<assignment>/      html feedback, hidden tests removed
    <workspace>/exports/grades.csv, exports/summary/<student>.md
    <workspace>/exchange/                        nbgrader's exchange (release / collect), unless W7_EXCHANGE
    <workspace>/nbgrader_config.py               nbgrader's configuration of this course root (one gradebook for
                                                 the formgrader and the command line; rewritten by every command)

Exactly once: each graded submission is written to the gradebook together with a row of w7_journal
(assignment, student, fingerprint of the submitted files, result) in ONE sqlite transaction. A run killed at any
point (kill -9) leaves each submission either fully recorded or not at all; the next run skips those whose
journal fingerprint matches the files and grades the rest. A resubmission changes the fingerprint and is graded
again (its row replaced, nbgrader's update_or_create semantics), so the gradebook never holds two.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .pipeline import Result, make_template, run_batch
from .settings import Settings
from .source import source_notebooks

JOURNAL_SQL = """CREATE TABLE IF NOT EXISTS w7_journal (
    assignment TEXT NOT NULL, student TEXT NOT NULL, fingerprint TEXT NOT NULL, status TEXT NOT NULL,
    total REAL, max_total REAL, flags TEXT, result TEXT, graded_at TEXT, run_id TEXT,
    PRIMARY KEY (assignment, student))"""


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def db_url(s: Settings) -> str:
    return "sqlite:///" + str(s.db_path)


# -- gradebook: assignment, backup, journal ---------------------------------------------------------------------
def ensure_assignment(s: Settings, assignment: str) -> None:
    """Put the assignment (notebooks, cells, points) into the instructor gradebook (nbgrader generate_assignment
    with the workspace's gradebook; the release it writes goes to a temporary folder)."""
    from .nbg import generate_release

    s.workspace.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="w7ws-") as tmp:
        generate_release(s.solutions, assignment, Path(tmp), s, db=s.db_path)
    _journal(s).close()


def _journal(s: Settings) -> sqlite3.Connection:
    con = sqlite3.connect(s.db_path, timeout=60)
    con.execute(JOURNAL_SQL)
    con.commit()
    return con


def backup(s: Settings, keep: int = 30) -> Path | None:
    """Consistent copy of the gradebook (sqlite backup API) into backups/; keeps the newest `keep`."""
    if not s.db_path.exists():
        return None
    d = s.workspace / "backups"
    d.mkdir(parents=True, exist_ok=True)
    dest = d / f"gradebook-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')}.db"
    src = sqlite3.connect(s.db_path, timeout=60)
    try:
        out = sqlite3.connect(dest)
        with out:
            src.backup(out)
        out.close()
    finally:
        src.close()
    for old in sorted(d.glob("gradebook-*.db"))[:-keep]:
        old.unlink()
    return dest


def journal_rows(s: Settings, assignment: str | None = None) -> dict[tuple[str, str], dict]:
    if not s.db_path.exists():
        return {}
    con = _journal(s)
    try:
        q = "SELECT assignment, student, fingerprint, status, total, max_total, flags, graded_at, run_id FROM w7_journal"
        rows = con.execute(q + (" WHERE assignment = ?" if assignment else ""), (assignment,) if assignment else ())
        keys = ("assignment", "student", "fingerprint", "status", "total", "max_total", "flags", "graded_at", "run_id")
        return {(r[0], r[1]): dict(zip(keys, r)) for r in rows}
    finally:
        con.close()


def fingerprint(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _parse_ts(ts: str | None):
    if not ts:
        return None
    from nbgrader.utils import parse_utc

    return parse_utc(ts)


ANSWERS_SQL = """CREATE TABLE IF NOT EXISTS w7_answers (
    assignment TEXT NOT NULL, student TEXT NOT NULL, notebook TEXT NOT NULL, grade_id TEXT NOT NULL,
    sha TEXT NOT NULL, PRIMARY KEY (assignment, student, notebook, grade_id))"""


def _hand_graded_answers(s: Settings, res: Result) -> dict[tuple[str, str], str]:
    """(notebook, grade id) -> sha256 of each hand-graded answer in the autograded notebooks; puts the graders'
    rubric (the mark scheme of each answer, from the solution notebook) into those notebooks on the way."""
    from .feedback import add_rubric, is_hand_graded, mark_schemes

    out: dict[tuple[str, str], str] = {}
    folder = Path(res.autograded_dir) if res.autograded_dir else None
    if folder is None or not folder.is_dir():
        return out
    schemes = mark_schemes(s.solutions / res.assignment)
    for p in sorted(folder.glob("*.ipynb")):
        try:
            nb = nbformat.read(p, as_version=4)
        except Exception:  # noqa: BLE001 - the autograded copy of a corrupt submission: nothing to grade by hand
            continue
        for c in nb.cells:
            if is_hand_graded(c):
                gid = c.metadata["nbgrader"]["grade_id"]
                out[(p.stem, gid)] = hashlib.sha256(c.source.encode()).hexdigest()
        if schemes.get(p.stem):
            nbformat.write(add_rubric(nb, schemes[p.stem]), p)
    return out


def merge(s: Settings, res: Result, fp: str, run_id: str, gb=None) -> None:
    """Write one result into the instructor gradebook and the journal, in one transaction (`gb`: an open
    nbgrader Gradebook to reuse; one is opened when None)."""
    from contextlib import nullcontext

    from nbgrader.api import Gradebook
    from sqlalchemy import text

    raw = res.gradebook or {"notebooks": {}}
    answers = _hand_graded_answers(s, res)
    with (nullcontext(gb) if gb is not None else Gradebook(db_url(s), s.course_id)) as gb:
        gb.db.execute(text(ANSWERS_SQL))
        before = {(r[0], r[1]): r[2] for r in gb.db.execute(
            text("SELECT notebook, grade_id, sha FROM w7_answers WHERE assignment = :a AND student = :s"),
            {"a": res.assignment, "s": res.student})}
        gb.update_or_create_student(res.student)
        kw = {}
        ts = _parse_ts(raw.get("timestamp"))
        if ts is not None:
            kw["timestamp"] = ts
        sub = gb.update_or_create_submission(res.assignment, res.student, **kw)
        for snb in sub.notebooks:
            data = raw["notebooks"].get(snb.name)
            changed = set()
            for g in snb.grades:
                if data and g.name in data["grades"]:
                    g.auto_score = data["grades"][g.name]["auto_score"]
                    g.needs_manual_grade = bool(data["grades"][g.name]["needs_manual_grade"])
                else:  # notebook missing, corrupt, or grading failed: nbgrader's rule for a missing notebook
                    g.auto_score = 0.0
                    g.needs_manual_grade = False
                # a hand grade stays with the answer it was given for: kept when the answer is unchanged
                # (regrading, a resubmission that changed other cells), dropped when the answer changed
                key, sha = (snb.name, g.name), answers.get((snb.name, g.name))
                if g.manual_score is not None or g.extra_credit is not None:
                    if sha is not None and before.get(key) not in (None, sha):
                        g.manual_score = g.extra_credit = None
                        changed.add(g.name)
                    elif g.manual_score is not None:
                        g.needs_manual_grade = False
            for c in snb.comments:
                if data and c.name in data["comments"]:
                    c.auto_comment = data["comments"][c.name]
                if c.name in changed:
                    c.manual_comment = None
            snb.late_submission_penalty = (data or {}).get("late_submission_penalty")
            snb.flagged = res.status != "graded"
        for (nb_id, gid), sha in answers.items():
            gb.db.execute(text("INSERT OR REPLACE INTO w7_answers VALUES (:a, :s, :n, :g, :h)"),
                          {"a": res.assignment, "s": res.student, "n": nb_id, "g": gid, "h": sha})
        gb.db.execute(text(JOURNAL_SQL))
        gb.db.execute(
            text("INSERT OR REPLACE INTO w7_journal VALUES (:a, :s, :fp, :st, :t, :m, :fl, :r, :at, :run)"),
            {"a": res.assignment, "s": res.student, "fp": fp, "st": res.status, "t": res.total, "m": res.max_total,
             "fl": json.dumps(res.flags), "r": json.dumps({k: v for k, v in res.to_json().items()
                                                           if k != "gradebook"}),
             "at": now_utc(), "run": run_id})
        gb.db.commit()


# -- submissions ------------------------------------------------------------------------------------------------
def submitted_dir(s: Settings, student: str, assignment: str) -> Path:
    return s.workspace / "submitted" / student / assignment


def submitted_students(s: Settings, assignment: str) -> list[str]:
    root = s.workspace / "submitted"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / assignment).is_dir())


STUDENT_ID = r"[A-Za-z0-9][A-Za-z0-9._@-]*"
NO_TIMESTAMP = ("no timestamp.txt: not checked for lateness; pass --submitted-at 'YYYY-mm-dd HH:MM:SS UTC' or "
                "--use-mtime to set one")


@dataclass
class Imported:
    """What import_folder did: student -> "new", "resubmitted" or "unchanged"; the entries it skipped, with
    why; notes per imported student (renamed notebook, another assignment's notebook, no timestamp)."""

    students: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # entry name -> reason
    notes: dict[str, list[str]] = field(default_factory=dict)
    litter: list[str] = field(default_factory=list)  # OS files ignored at the top of the folder

    def count(self, what: str) -> int:
        return sum(1 for v in self.students.values() if v == what)


def parse_time(text: str, option: str = "time") -> dt.datetime:
    """A date and time as nbgrader writes them ("2026-12-01 17:00:00 UTC", any time zone name or offset; UTC
    when none), as naive UTC. Raises ValueError naming the expected format for anything else ("tomorrow")."""
    from nbgrader.utils import parse_utc

    want = (f"{option} {text!r}: expected a date and time as 'YYYY-mm-dd HH:MM:SS TZ', e.g. "
            f"'2026-12-01 17:00:00 UTC' (a time zone name or offset such as +0100; UTC when none)")
    if not re.match(r"\s*\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(\s+\S+)?\s*$", text or ""):
        raise ValueError(want)
    try:
        return parse_utc(text.strip())
    except (ValueError, OverflowError, TypeError):
        raise ValueError(want) from None


def _ts_text(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _kept(earlier: dict, assignment: str, student: str, dest: Path) -> str:
    if not dest.exists():
        return ""
    row = earlier.get((assignment, student))
    if row and row["total"] is not None and row["fingerprint"] == fingerprint(dest):
        return f"; the earlier submission is kept ({row['status']} {row['total']:g}/{row['max_total']:g})"
    return "; the earlier submission is kept"


def import_folder(s: Settings, assignment: str, folder: Path, notebook_ids: list[str], *,
                  submitted_at: str | None = None, use_mtime: bool = False) -> Imported:
    """Copy a folder of submissions into submitted/: FOLDER/<student>/ (the assignment's files, optionally
    timestamp.txt) or FOLDER/<student>.ipynb (single-notebook assignments). The folder is only read.

    OS litter (__MACOSX, .DS_Store, Thumbs.db, desktop.ini, dot files) is ignored everywhere. A student entry with
    no usable notebook of this assignment (empty, unreadable, corrupt, or another assignment's notebook) never
    replaces an earlier submission: it is skipped with its reason and the earlier one (and its grade) kept.
    Lateness: a folder's own timestamp.txt; else `submitted_at` ("YYYY-mm-dd HH:MM:SS UTC") or, with
    `use_mtime`, the newest file time; else no timestamp (not checked for lateness, noted per student).
    """
    from .integrity import NBGRADER_FILES, _read, course_grade_ids, grade_ids, locate, near_name
    from .settings import is_litter

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of submissions (expected <student>/ folders or "
                                f"<student>.ipynb files)")
    when = parse_time(submitted_at, "--submitted-at") if submitted_at else None
    sources = source_notebooks(s.solutions / assignment)
    expected = {i: grade_ids(sources[i]) if i in sources else set() for i in notebook_ids}
    others = course_grade_ids(s.solutions, exclude=assignment)
    earlier = journal_rows(s, assignment)
    out = Imported()
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if is_litter(name):
            out.litter.append(name)
            continue
        if entry.is_dir():
            student, src_files = name, entry
        elif entry.suffix.lower() == ".ipynb" and len(notebook_ids) == 1:
            student, src_files = entry.stem, None
            if near_name(student) in {near_name(i) for i in notebook_ids}:
                out.skipped[name] = ("the assignment's notebook itself, not <student>.ipynb: put it in a folder "
                                     "named after the student")
                continue
        else:
            out.skipped[name] = ("not a student: expected <student>/ folders" +
                                 (" or <student>.ipynb files" if len(notebook_ids) == 1 else ""))
            continue
        if not re.fullmatch(STUDENT_ID, student):
            out.skipped[name] = "not a student id (letters, digits, '.', '_', '-', '@'): rename it to the student's id"
            continue
        dest = submitted_dir(s, student, assignment)
        notes: list[str] = []
        with tempfile.TemporaryDirectory(prefix="w7imp-") as tmp:
            stage = Path(tmp) / "s"
            try:
                if src_files is not None:
                    shutil.copytree(src_files, stage, symlinks=False, ignore=lambda d, names: [
                        n for n in names if is_litter(n) or n == "__pycache__"])
                else:
                    stage.mkdir()
                    shutil.copy2(entry, stage / f"{notebook_ids[0]}.ipynb")
            except (OSError, shutil.Error) as e:
                if isinstance(e, shutil.Error) and e.args and isinstance(e.args[0], list) and e.args[0]:
                    src, _, why = e.args[0][0]
                    m = re.search(r"\[Errno \d+\] ([^:]+)", str(why))
                    rel = Path(src).relative_to(entry) if Path(src).is_relative_to(entry) else Path(src).name
                    first = f"{rel}: {m.group(1) if m else why}"
                else:
                    first = getattr(e, "strerror", None) or str(e)
                out.skipped[name] = f"unreadable ({first})" + _kept(earlier, assignment, student, dest)
                continue
            files = [p for p in stage.rglob("*") if p.is_file()]
            content = [p for p in files if not (p.parent == stage and p.name in NBGRADER_FILES)]
            loc = locate(stage, expected, others, assignment)
            usable = [i for i, p in loc.found.items() if _read(p)[0] is not None]
            unusable = None  # why this entry holds nothing gradable
            if not usable:
                if not content:
                    unusable = "empty folder" if src_files is not None else "empty file"
                elif loc.foreign:
                    unusable = "; ".join(loc.notes)
                elif loc.found:
                    unusable = "; ".join(f"{p.name}: {_read(p)[1]}" for p in loc.found.values())
                else:
                    unusable = (f"no notebook of {assignment} ({', '.join(f'{i}.ipynb' for i in notebook_ids)}); "
                                f"files: {', '.join(loc.extra[:5])}" + ("; " + "; ".join(loc.notes) if loc.notes
                                                                       else ""))
                notes.append(unusable)
            else:
                notes += loc.notes
            ts = stage / "timestamp.txt"
            if ts.is_file():
                try:
                    parse_time(ts.read_text(errors="replace").strip(), "timestamp.txt")
                except ValueError:
                    notes.append(f"timestamp.txt holds {ts.read_text(errors='replace').strip()[:40]!r}, not a time: "
                                 "ignored")
                    ts.unlink()
            if not ts.is_file():
                if when is not None:
                    ts.write_text(_ts_text(when))
                elif use_mtime:
                    mtime = max((p.stat().st_mtime for p in files), default=None) if src_files is not None \
                        else entry.stat().st_mtime
                    if mtime is not None:
                        ts.write_text(_ts_text(dt.datetime.fromtimestamp(mtime, dt.timezone.utc)))
                else:
                    notes.append(NO_TIMESTAMP)
            if dest.exists() and fingerprint(dest) == fingerprint(stage):
                out.students[student] = "unchanged"
                continue
            if unusable is not None and (dest.exists() or not content):
                # never replaces an earlier submission; with nothing earlier, an empty entry is no submission
                out.skipped[name] = unusable + _kept(earlier, assignment, student, dest)
                continue
            if dest.exists():
                hist = s.workspace / "submitted-history" / student / assignment / \
                    dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
                hist.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(dest), hist)
                out.students[student] = "resubmitted"
            else:
                out.students[student] = "new"
            if notes:
                out.notes[student] = notes
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(stage, dest)
    return out


# -- autograde --------------------------------------------------------------------------------------------------
def set_duedate(s: Settings, assignment: str, duedate: str) -> None:
    """Record the assignment's due date (e.g. "2026-12-01 17:00:00 UTC") in the gradebook: nbgrader then
    computes each submission's lateness from its timestamp.txt (shown in export)."""
    from nbgrader.api import Gradebook

    when = parse_time(duedate, "--duedate")
    ensure_assignment(s, assignment)
    with Gradebook(db_url(s), s.course_id) as gb:
        gb.update_or_create_assignment(assignment, duedate=when)


def get_duedate(s: Settings, assignment: str):
    from nbgrader.api import Gradebook

    with Gradebook(db_url(s), s.course_id) as gb:
        return gb.find_assignment(assignment).duedate


def autograde(s: Settings, assignment: str, students: list[str] | None = None, *, workers: int = 2,
              force: bool = False, progress: bool = True) -> dict[str, Result]:
    """Grade every submitted (or the named) students' submissions not yet graded in their current version, and
    those whose last grading was an infrastructure failure (Result.infrastructure: the environment, not the
    submission, failed)."""
    from .sandbox import check

    check(s.sandbox)  # no sandbox: stop here with what to install, before touching anything
    have = submitted_students(s, assignment)
    if students:
        unknown = sorted(set(students) - set(have))
        if unknown:
            raise FileNotFoundError(
                f"no submission of {assignment} from {', '.join(unknown)} in {s.workspace / 'submitted'} "
                f"(submitted: {', '.join(have[:20]) + (' ...' if len(have) > 20 else '') if have else 'nobody'})")
        have = [x for x in have if x in set(students)]
    s.workspace.mkdir(parents=True, exist_ok=True)
    backup(s)
    _journal(s).close()
    done = journal_rows(s, assignment)
    retry = infrastructure_failures(s, assignment)
    todo = []
    for st in have:
        fp = fingerprint(submitted_dir(s, st, assignment))
        row = done.get((assignment, st))
        if force or row is None or row["fingerprint"] != fp or st in retry:
            todo.append((st, fp))
    run_id = uuid.uuid4().hex[:12]
    if not todo:
        ensure_assignment(s, assignment)
        return {}
    fps = dict(todo)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=f"autograde {assignment}", unit="submission", file=sys.stderr)

    from nbgrader.api import Gradebook

    book = Gradebook(db_url(s), s.course_id)  # one connection for the run: merging costs milliseconds, not seconds

    def on_result(res: Result) -> None:
        merge(s, res, fps[res.student], run_id, gb=book)
        with open(s.workspace / "autograde-runs.log", "a") as fh:  # one line per graded submission (audit)
            fh.write(json.dumps({"run": run_id, "assignment": assignment, "student": res.student,
                                 "status": res.status, "total": res.total, "at": now_utc()}) + "\n")
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{res.student}: {res.status}")

    with tempfile.TemporaryDirectory(prefix="w7tpl-") as tmp:
        tpl = make_template(assignment, s.solutions, Path(tmp), s, db=s.db_path)  # also registers it in ours
        jobs = [(st, str(submitted_dir(s, st, assignment)),
                 str(s.workspace / "autograded" / st / assignment)) for st, _ in todo]
        from . import runs

        runs.begin(s.workspace)  # the workers and kernels record themselves there (runs.py)
        try:
            return run_batch(tpl, jobs, s, workers=workers, on_result=on_result)
        finally:
            runs.end()
            book.close()
            if bar is not None:
                bar.close()


def infrastructure_failures(s: Settings, assignment: str) -> set[str]:
    """Students whose last grading of `assignment` failed for the grader's or environment's reasons (graded again
    by the next autograde run, changed or not)."""
    if not s.db_path.exists():
        return set()
    con = _journal(s)
    try:
        rows = con.execute("SELECT student, result FROM w7_journal WHERE assignment = ? AND status = 'failed'",
                           (assignment,)).fetchall()
    finally:
        con.close()
    return {st for st, r in rows if r and json.loads(r).get("infrastructure")}


# -- feedback ---------------------------------------------------------------------------------------------------
def strip_hidden(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove hidden tests, their outputs and tracebacks, mark schemes and the graders' rubric cells (the feedback
    version without the gradebook's view; `feedback` does more: see autograder/feedback.py)."""
    from .feedback import feedback_notebook, part_titles

    return feedback_notebook(nb, secrets=set(), titles=part_titles(nb), pending=set())


def hand_grading_left(s: Settings, assignment: str | None = None) -> dict[tuple[str, str], list[str]]:
    """(assignment, student) -> "notebook/grade id" of each answer still waiting for a hand grade."""
    from nbgrader.api import Gradebook

    out: dict[tuple[str, str], list[str]] = {}
    if not s.db_path.exists():
        return out
    with Gradebook(db_url(s), s.course_id) as gb:
        for a in gb.assignments:
            if assignment and a.name != assignment:
                continue
            for sub in a.submissions:
                left = [f"{nb.name}/{g.name}" for nb in sub.notebooks for g in nb.grades if g.needs_manual_grade]
                if left:
                    out[(a.name, sub.student.id)] = left
    return out


def feedback(s: Settings, assignment: str, students: list[str] | None = None,
             warnings: list[str] | None = None) -> list[Path]:
    """html feedback from the autograded notebooks and the instructor gradebook (hand scores and graders' comments
    included), into feedback/<student>/<assignment>/. What a student sees: autograder/feedback.py. Answers not
    graded by hand yet say "not graded yet". `warnings` collects messages for the instructor."""
    import nbgrader
    from nbgrader.api import Gradebook
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    from . import feedback as fb
    from .nbg import course_config, replace_tree

    warnings = warnings if warnings is not None else []
    root = s.workspace / "autograded"
    names = sorted(p.name for p in root.iterdir() if (p / assignment).is_dir()) if root.is_dir() else []
    if students:
        names = [n for n in names if n in set(students)]
    out: list[Path] = []
    if not names:
        return out
    src_dir, rel_dir = s.solutions / assignment, s.exercises / assignment
    secrets: dict[str, set[str]] = {}
    for stem, nb in source_notebooks(src_dir).items():
        rel = rel_dir / f"{stem}.ipynb"
        secrets[stem] = fb.secret_lines(nb, nbformat.read(rel, as_version=4) if rel.is_file() else None)
    left = hand_grading_left(s, assignment)
    student_secrets: dict[tuple[str, str], set[str]] = {}
    with tempfile.TemporaryDirectory(prefix="w7fb-") as tmp:
        work = Path(tmp)
        with Gradebook(db_url(s), s.course_id) as gb:
            known = {sub.student.id for sub in gb.find_assignment(assignment).submissions}
        for st in names:
            if st not in known:
                warnings.append(f"{st}: autograded notebooks but no submission in the gradebook: no feedback")
                continue
            dest = work / "autograded" / st / assignment
            dest.mkdir(parents=True)
            pending = {x.split("/", 1)[1] for x in left.get((assignment, st), [])}
            for p in (root / st / assignment).glob("*.ipynb"):
                nb = nbformat.read(p, as_version=4)
                mine = secrets.get(p.stem, set())
                mine = mine - fb.own_lines(mine, nb)  # what the student wrote is not secret from them
                student_secrets[(st, p.stem)] = mine
                nb = fb.feedback_notebook(nb, secrets=mine, titles=fb.part_titles(nb), pending=pending)
                nbformat.write(nb, dest / p.name)
        c = course_config(work, assignment, s, db=s.db_path)  # the instructor's gradebook, as graded by hand now
        c.HTMLExporter.template_name = "w7feedback"
        nbg_templates = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"
        c.HTMLExporter.extra_template_basedirs = [str(fb.TEMPLATES), str(nbg_templates)]
        conv = GenerateFeedback(coursedir=CourseDirectory(config=c), config=c)
        conv.log.setLevel(logging.ERROR)
        conv.start()
        for st in names:
            src = work / "feedback" / st / assignment
            if not src.is_dir():
                continue
            for page in src.glob("*.html"):
                text, warn = fb.offline_html(page.read_text(encoding="utf-8"))
                found = fb.leaks(text, student_secrets.get((st, page.stem), secrets.get(page.stem, set())))
                if found:  # never reached in the tests; a last line of defence
                    page.unlink()
                    warnings.append(f"{st}: feedback for {page.stem} withheld: it contained instructor text "
                                    f"({found[0][:60]!r})")
                    continue
                page.write_text(text, encoding="utf-8")
                warnings.extend(w for w in warn if w not in warnings)
            dest = s.workspace / "feedback" / st / assignment
            dest.parent.mkdir(parents=True, exist_ok=True)
            replace_tree(src, dest)
            # nbgrader's release_feedback matches feedback to the exchange's submission by these two files
            for meta in ("timestamp.txt", "submission_secret.txt"):
                for origin in (root / st / assignment / meta, submitted_dir(s, st, assignment) / meta):
                    if origin.is_file():
                        shutil.copy2(origin, dest / meta)
                        break
            out.append(dest)
    return out


def exchange_root(s: Settings) -> Path:
    """W7_EXCHANGE when set (on a hub: the folder every user's nbgrader shares), else <workspace>/exchange."""
    return Path(os.environ["W7_EXCHANGE"]) if os.environ.get("W7_EXCHANGE") else s.workspace / "exchange"


def release_feedback(s: Settings, assignment: str, students: list[str] | None = None, *,
                     allow_ungraded: bool = False) -> dict[str, list]:
    """Release feedback/<student>/<assignment>/ to the exchange (nbgrader release_feedback), for submissions that
    came through the exchange (they have submission_secret.txt; nbgrader finds the student by it).

    Returns {"released": [student], "from_folder": [html file], "not_graded": [(student, [answers])]}:
    submissions imported with `collect --from` cannot be released (hand those files to the students); those with
    answers not graded by hand yet are held back unless allow_ungraded."""
    root = s.workspace / "feedback"
    names = sorted(p.name for p in root.iterdir() if (p / assignment).is_dir()) if root.is_dir() else []
    if students:
        names = [n for n in names if n in set(students)]
    left = hand_grading_left(s, assignment)
    out: dict[str, list] = {"released": [], "from_folder": [], "not_graded": []}
    ready = []
    for st in names:
        d = root / st / assignment
        if not (d / "submission_secret.txt").is_file() or not (d / "timestamp.txt").is_file():
            out["from_folder"].extend(sorted(d.glob("*.html")))
        elif left.get((assignment, st)) and not allow_ungraded:
            out["not_graded"].append((st, left[(assignment, st)]))
        else:
            ready.append(st)
    if not ready:
        return out
    with tempfile.TemporaryDirectory(prefix="w7rel-") as tmp:
        stage = Path(tmp) / "feedback"
        for st in ready:
            shutil.copytree(root / st / assignment, stage / st / assignment)
        nbgrader_cli(s, "release_feedback", assignment, f"--CourseDirectory.feedback_directory={stage}")
    out["released"] = ready
    return out


# -- export and status ------------------------------------------------------------------------------------------
def export(s: Settings) -> tuple[Path, Path]:
    """grades.csv (one row per student and assignment: autograded, hand-graded and total score, what still needs
    hand grading) and summary/<student>.md.

    autograded_score: the test cells' automatic scores; manual_score: the hand scores of answers (written or
    code free-response) graded so far; score: nbgrader's total (with overrides, extra credit, late penalty);
    to_grade_by_hand: the answers still waiting for a hand grade (notebook/grade id)."""
    from nbgrader.api import Gradebook, MissingEntry

    exp = s.workspace / "exports"
    (exp / "summary").mkdir(parents=True, exist_ok=True)
    journal = journal_rows(s)
    rows = []
    with Gradebook(db_url(s), s.course_id) as gb:
        for a in gb.assignments:
            for st in gb.students:
                j = journal.get((a.name, st.id))
                try:
                    sub = gb.find_submission(a.name, st.id)
                except MissingEntry:
                    rows.append({"student": st.id, "assignment": a.name, "status": "missing", "timestamp": "",
                                 "seconds_late": "", "late_penalty": "", "autograded_score": 0, "manual_score": "",
                                 "score": 0, "max_score": a.max_score, "needs_manual_grade": "",
                                 "to_grade_by_hand": "", "flags": ""})
                    continue
                grades = [(g, g.name in {c.name for c in nb.notebook.solution_cells})
                          for nb in sub.notebooks for g in nb.grades]
                auto = sum((g.auto_score or 0) for g, by_hand in grades if not by_hand)
                manual = sum((g.manual_score or 0) + (g.extra_credit or 0) for g, by_hand in grades
                             if by_hand and g.manual_score is not None)
                left = [f"{nb.name}/{g.name}" for nb in sub.notebooks for g in nb.grades if g.needs_manual_grade]
                rows.append({
                    "student": st.id, "assignment": a.name, "status": j["status"] if j else "not graded",
                    "timestamp": sub.timestamp.isoformat() if sub.timestamp else "",
                    "seconds_late": round(sub.total_seconds_late, 1), "late_penalty": sub.late_submission_penalty,
                    "autograded_score": auto, "manual_score": manual, "score": sub.score,
                    "max_score": sub.max_score, "needs_manual_grade": sub.needs_manual_grade,
                    "to_grade_by_hand": " ".join(left),
                    "flags": "; ".join(json.loads(j["flags"])) if j and j["flags"] else ""})
    csv_path = exp / "grades.csv"
    keys = ["student", "assignment", "status", "timestamp", "seconds_late", "late_penalty", "autograded_score",
            "manual_score", "score", "max_score", "needs_manual_grade", "to_grade_by_hand", "flags"]
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    by_student: dict[str, list[dict]] = {}
    for r in rows:
        by_student.setdefault(r["student"], []).append(r)
    for st, rs in by_student.items():
        lines = [f"# {st}", "", "| assignment | status | autograded | by hand | score | max | late (s) | "
                 "to grade by hand | flags |", "|---|---|---|---|---|---|---|---|---|"]
        for r in rs:
            lines.append(f"| {r['assignment']} | {r['status']} | {r['autograded_score']} | {r['manual_score']} | "
                         f"{r['score']} | {r['max_score']} | {r['seconds_late']} | {r['to_grade_by_hand']} | "
                         f"{r['flags'].replace('|', '/')} |")
        (exp / "summary" / f"{st}.md").write_text("\n".join(lines) + "\n")
    return csv_path, exp / "summary"


def status(s: Settings, assignment: str) -> list[dict]:
    """Each student: graded, flagged (reason), failed (reason), pending (submitted, not graded in this version)
    or missing (known to the gradebook, nothing submitted)."""
    from nbgrader.api import Gradebook

    journal = journal_rows(s, assignment)
    subs = set(submitted_students(s, assignment))
    known = set(subs)
    if s.db_path.exists():
        with Gradebook(db_url(s), s.course_id) as gb:
            known |= {st.id for st in gb.students}
    out = []
    for st in sorted(known):
        j = journal.get((assignment, st))
        if st not in subs:
            out.append({"student": st, "status": "missing", "detail": "no submission"})
        elif j is None or j["fingerprint"] != fingerprint(submitted_dir(s, st, assignment)):
            out.append({"student": st, "status": "pending", "detail": "submitted, not graded in this version"})
        else:
            flags = json.loads(j["flags"] or "[]")
            out.append({"student": st, "status": j["status"], "score": j["total"], "max": j["max_total"],
                        "detail": "; ".join(flags)})
    return out


# -- exchange (nbgrader's own commands) -------------------------------------------------------------------------
def nbgrader_cli(s: Settings, *args: str) -> None:
    """Run an nbgrader command on the workspace with the course settings (release_assignment, collect, ...).

    The exchange is W7_EXCHANGE when set (on a hub: the folder every user's nbgrader shares, e.g.
    /srv/nbgrader/exchange), else <workspace>/exchange.
    """
    exchange = Path(os.environ["W7_EXCHANGE"]) if os.environ.get("W7_EXCHANGE") else s.workspace / "exchange"
    exchange.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "nbgrader", *args,
           f"--CourseDirectory.root={s.workspace}", f"--CourseDirectory.course_id={s.course_id}",
           f"--CourseDirectory.source_directory={s.solutions}",
           f"--CourseDirectory.release_directory={s.exercises}",
           f"--CourseDirectory.db_url={db_url(s)}", f"--Exchange.root={exchange}"]
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    r = subprocess.run(cmd, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"nbgrader {args[0]} failed (exit {r.returncode}); see its messages above")


# -- one gradebook: the formgrader and the command line share the workspace as nbgrader's course root -------------
NBGRADER_CONFIG = "nbgrader_config.py"


# nbgrader's own feedback (the formgrader's "Generate Feedback" button, `nbgrader generate_feedback`) renders the
# autograded notebook as it is: hidden tests, their tracebacks and the graders' mark schemes would reach students.
# Every nbgrader configuration this course writes (the workspace's, the hub instructors') switches it off with a
# message that names the course's own feedback; the class is defined in the configuration file itself, so the
# formgrader needs nothing importable beyond nbconvert.
FEEDBACK_GUARD = """
from nbconvert.preprocessors import Preprocessor as _W7Preprocessor


class UseTheCourseFeedback(_W7Preprocessor):
    \"\"\"Stops nbgrader's own feedback, which would show students the hidden tests and the mark schemes. It
    refuses when nbgrader registers it, before nbgrader removes any earlier feedback folder.\"\"\"

    def __init__(self, **kwargs):
        raise RuntimeError(
            "this course makes feedback with `python -m autograder feedback <assignment> --release` (in a terminal): "
            "nbgrader's own Generate Feedback would show students the hidden tests and the graders' mark schemes")


c.GenerateFeedback.preprocessors = [UseTheCourseFeedback]  # noqa: F821
"""


def nbgrader_config_text(s: Settings) -> str:
    ws = s.workspace.resolve()
    lines = [
        "# Written by `python -m autograder` (autograder/workspace.py) at every command; edits are overwritten.",
        "# This instructor workspace IS nbgrader's course root: the formgrader started here (or loading this file",
        "# from ~/.jupyter/nbgrader_config.py, see `python -m autograder formgrader-config`) reads and writes the",
        "# same gradebook as the command line.",
        "c = get_config()  # noqa: F821",
        f"c.CourseDirectory.root = {str(ws)!r}",
        f"c.CourseDirectory.course_id = {s.course_id!r}",
        f"c.CourseDirectory.source_directory = {str(s.solutions.resolve())!r}",
        f"c.CourseDirectory.release_directory = {str(s.exercises.resolve())!r}",
        f"c.CourseDirectory.ignore = {list(s.ignore)!r}  # *.md: the solutions' MyST sources stay out of releases",
        f"c.CourseDirectory.db_url = {'sqlite:///' + str(ws / 'gradebook.db')!r}",
        f"c.Exchange.root = {str(exchange_root(s).resolve())!r}",
    ]
    return "\n".join(lines) + "\n" + FEEDBACK_GUARD


def write_nbgrader_config(s: Settings) -> Path:
    """Write <workspace>/nbgrader_config.py (course root = the workspace, course id, absolute solutions/ and
    exercises/ folders, the workspace's gradebook, the exchange); rewritten only when it changed."""
    path = s.workspace / NBGRADER_CONFIG
    text = nbgrader_config_text(s)
    if not path.is_file() or path.read_text() != text:
        s.workspace.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def grade_manual(s: Settings, assignment: str, student: str, grade_id: str, score: float,
                 comment: str | None = None, notebook: str | None = None,
                 extra_credit: float | None = None) -> dict:
    """Give a hand score (and optionally a comment) to one answer, as the formgrader's grade and comment API do:
    manual_score (and extra_credit) on the grade, needs_manual_grade cleared, manual_comment on the comment.
    Returns the grade's new state. Raises ValueError with what exists when a name is wrong."""
    from nbgrader.api import Gradebook, MissingEntry

    if not s.db_path.exists():
        raise FileNotFoundError(f"no gradebook at {s.db_path}: collect and autograde {assignment} first")
    with Gradebook(db_url(s), s.course_id) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            have = sorted(x.student.id for x in gb.find_assignment(assignment).submissions) \
                if assignment in {a.name for a in gb.assignments} else []
            raise ValueError(f"no submission of {assignment!r} by {student!r} in the gradebook "
                             f"(have: {', '.join(have) or 'none'})") from None
        found = [(nb, g) for nb in sub.notebooks for g in nb.grades
                 if g.name == grade_id and (notebook is None or nb.name == notebook)]
        by_hand = {(nb.name, c.name) for nb in sub.notebooks for c in nb.notebook.solution_cells}
        hand = sorted(f"{g.name} ({g.max_score:g} point{'' if g.max_score == 1 else 's'})"
                      for nb in sub.notebooks for g in nb.grades
                      if (nb.name, g.name) in by_hand)
        if not found:
            raise ValueError(f"no answer {grade_id!r} in {assignment}; the answers graded by hand are: "
                             f"{', '.join(hand) or 'none'}")
        if len(found) > 1:
            raise ValueError(f"{grade_id!r} is in several notebooks ({', '.join(nb.name for nb, _ in found)}): "
                             "say which with --notebook")
        nb, g = found[0]
        if (nb.name, g.name) not in by_hand:
            raise ValueError(f"{grade_id!r} is an autograded test cell, not an answer graded by hand "
                             f"(those are: {', '.join(hand) or 'none'})")
        if not 0 <= score <= g.max_score:
            raise ValueError(f"score {score:g} for {grade_id!r} is outside 0 .. {g.max_score:g} (its points); "
                             "use --extra-credit for points beyond them")
        g.manual_score = float(score)
        if extra_credit is not None:
            g.extra_credit = float(extra_credit)
        g.needs_manual_grade = g.manual_score is None and g.auto_score is None  # the formgrader's rule
        if comment is not None:
            gb.find_comment(grade_id, nb.name, assignment, student).manual_comment = comment
        gb.db.commit()
        return {"student": student, "assignment": assignment, "notebook": nb.name, "grade_id": grade_id,
                "manual_score": g.manual_score, "max_score": g.max_score, "extra_credit": g.extra_credit,
                "comment": comment}
