"""Thin in-process wrappers around nbgrader's converters (no 4-7 s CLI start-up per call).

Every call works in a course root of its own (a temporary folder) whose `source` is a symlink to the real
solutions folder, so calls never share a gradebook or write next to the sources.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from traitlets.config import Config

from .settings import Settings

LOG = logging.getLogger("autograder")

# nbgrader's Gradebook runs the `alembic` command (from the venv's bin/) when it creates a gradebook
_BIN = os.path.dirname(sys.executable)
if shutil.which("alembic") is None and os.path.exists(os.path.join(_BIN, "alembic")):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")


def _alembic_head() -> str | None:
    """The newest revision of nbgrader's migrations, read from its files (what `alembic heads` prints)."""
    import re

    import nbgrader

    folder = Path(nbgrader.__file__).parent / "alembic" / "versions"
    revs, downs = set(), set()
    for f in folder.glob("*.py"):
        text = f.read_text()
        m = re.search(r"^revision = ['\"](\w+)['\"]", text, re.M)
        d = re.search(r"^down_revision = ['\"](\w+)['\"]", text, re.M)
        if m:
            revs.add(m.group(1))
        if d:
            downs.add(d.group(1))
    heads = revs - downs
    return heads.pop() if len(heads) == 1 else None


def _fast_gradebooks() -> None:
    """A new gradebook makes nbgrader start an `alembic heads` subprocess (seconds on a busy machine): give it the
    same answer from the migration files instead (checked against alembic once in tests)."""
    import nbgrader.api as nba

    if getattr(nba.get_alembic_version, "_w7", False):
        return
    head = _alembic_head()
    if head is None:
        return
    fast = lambda: head  # noqa: E731
    fast._w7 = True  # type: ignore[attr-defined]
    nba.get_alembic_version = fast


_fast_gradebooks()


def course_config(root: Path, assignment: str, settings: Settings, *, student: str = "*",
                  db: Path | None = None) -> Config:
    """nbgrader configuration for a course root laid out as root/{source,release,submitted,autograded,feedback}."""
    from nbgrader.preprocessors import (
        AssignLatePenalties, CheckCellMetadata, Execute, IgnorePattern, LimitOutput, SaveAutoGrades,
    )
    from nbconvert.preprocessors import ClearMetadataPreprocessor

    from .compare import CompareRecords
    from .kernel import GuardedExecute, StderrCounts

    c = Config()
    cd = c.CourseDirectory
    cd.root = str(root)
    cd.source_directory = "source"
    cd.release_directory = "release"
    cd.submitted_directory = "submitted"
    cd.autograded_directory = "autograded"
    cd.feedback_directory = "feedback"
    cd.db_url = "sqlite:///" + str(db or root / "gradebook.db")
    cd.course_id = settings.course_id
    cd.assignment_id = assignment
    cd.student_id = student
    cd.ignore = list(settings.ignore)
    c.BaseConverter.force = True
    c.Execute.timeout = settings.cell_timeout_s
    c.GuardedExecute.timeout = settings.cell_timeout_s
    c.GuardedExecute.max_output_bytes = settings.output_bytes_per_cell
    c.GuardedExecute.notebook_timeout = int(settings.notebook_timeout_s)
    c.LimitOutput.max_lines = 1000
    c.LimitOutput.max_traceback = 100
    # nbgrader's own list, with the sandboxed, guarded executor in place of Execute, and stderr output of a
    # passing test cell kept as text instead of scoring 0 (a correct answer that prints a warning keeps its points)
    c.Autograde.autograde_preprocessors = [
        GuardedExecute, StderrCounts, CompareRecords, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
        AssignLatePenalties, CheckCellMetadata,
    ]
    del Execute
    return c


def _quiet(conv) -> None:
    conv.log.setLevel(logging.ERROR)


def generate_release(source_parent: Path, assignment: str, work: Path, settings: Settings,
                     db: Path | None = None) -> Path:
    """Run nbgrader generate_assignment for `assignment` (a folder of `source_parent`) in the course root `work`.

    Returns work/release/<assignment>. `work/gradebook.db` then holds the assignment (a template for grading).
    """
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    from .source import materialise

    src = source_parent / assignment
    if not src.is_dir() or not materialise(src):
        raise FileNotFoundError(f"no source notebooks in {src}: an assignment is a folder of nbgrader source "
                                f"notebooks (solutions/NN-slug/<name>.md in MyST, or <name>.ipynb)")
    work.mkdir(parents=True, exist_ok=True)
    link = work / "source"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(source_parent.resolve(), target_is_directory=True)
    c = course_config(work, assignment, settings, student=".", db=db)
    coursedir = CourseDirectory(config=c)
    conv = GenerateAssignment(coursedir=coursedir, config=c)
    _quiet(conv)
    conv.start()
    out = work / "release" / assignment
    if not out.is_dir():
        raise RuntimeError(f"nbgrader generate_assignment wrote nothing for {assignment} (see its log above)")
    return out


def autograde(work: Path, assignment: str, student: str, settings: Settings) -> None:
    """Run nbgrader autograde for one student in course root `work` (submitted/<student>/<assignment>/ ready)."""
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory

    c = course_config(work, assignment, settings, student=student)
    coursedir = CourseDirectory(config=c)
    conv = Autograde(coursedir=coursedir, config=c)
    _quiet(conv)
    conv.start()


def replace_tree(src: Path, dest: Path) -> None:
    """Replace folder `dest` by a copy of `src` (written beside it first, then renamed: never half-written)."""
    tmp = dest.with_name(dest.name + ".tmp-autograder")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    for p in tmp.rglob("*"):
        if p.is_file():
            os.chmod(p, 0o644)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
