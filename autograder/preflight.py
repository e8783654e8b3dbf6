"""Before a command touches the instructor workspace: is it a folder we can write, and is its gradebook sound?

A read-only, missing-and-uncreatable or unwritable workspace, and a gradebook that is not a valid nbgrader
gradebook (not sqlite, damaged pages, nbgrader's tables missing), stop the command with a message that says which
file or folder and what to do (exit 2), before anything is written. For a damaged gradebook the message names the
newest backup in <workspace>/backups/ that is itself a valid gradebook and the exact command that restores it.
Nothing is changed: the gradebook is opened read-only, and nothing is written until these checks passed.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import sqlite3
import tempfile
from pathlib import Path

# nbgrader's own tables (nbgrader.api): a gradebook without them is not nbgrader's
NBGRADER_TABLES = frozenset({"assignment", "base_cell", "comment", "course", "grade", "grade_cells", "notebook",
                             "solution_cells", "source_cell", "student", "submitted_assignment",
                             "submitted_notebook", "task_cells"})


def gradebook_problem(path: Path) -> str | None:
    """Why `path` is not a usable nbgrader gradebook (None when it is). Opened read-only; nothing is written."""
    try:
        if path.stat().st_size == 0:
            return "it is empty (0 bytes)"
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    except (OSError, sqlite3.Error) as e:
        return f"it cannot be opened ({type(e).__name__}: {e})"
    try:
        rows = con.execute("PRAGMA integrity_check").fetchall()
        if [r[0] for r in rows] != ["ok"]:
            return "sqlite's integrity check fails (" + "; ".join(str(r[0]) for r in rows[:3]) + ")"
        have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = sorted(NBGRADER_TABLES - have)
        if missing:
            return "it lacks nbgrader's tables " + ", ".join(missing)
    except sqlite3.Error as e:
        return f"sqlite cannot read it ({type(e).__name__}: {e})"
    finally:
        con.close()
    return None


def newest_good_backup(workspace: Path) -> tuple[Path | None, int]:
    """The newest backups/gradebook-*.db that is a valid gradebook, and how many backups there are."""
    found = sorted((workspace / "backups").glob("gradebook-*.db"), key=lambda p: (p.stat().st_mtime, p.name),
                   reverse=True) if (workspace / "backups").is_dir() else []
    for p in found:
        if gradebook_problem(p) is None:
            return p, len(found)
    return None, len(found)


def check_gradebook(workspace: Path, db: Path) -> None:
    """Stop (SystemExit with the message: exit 2) when the workspace's gradebook exists and is not sound."""
    if not db.exists():
        return  # a new workspace: the first command makes it
    why = gradebook_problem(db)
    if why is None:
        return
    msg = f"the gradebook {db} is not a valid nbgrader gradebook: {why}. Nothing was changed."
    good, n = newest_good_backup(workspace)
    if good is not None:
        when = dt.datetime.fromtimestamp(good.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        damaged = db.with_name(db.name + ".damaged")
        msg += (f" The newest good backup is {good} (taken {when}; grades given after it are not in it). Restore it "
                f"(keeping the damaged file) with:\n  cp {shlex.quote(str(db))} {shlex.quote(str(damaged))} && "
                f"cp {shlex.quote(str(good))} {shlex.quote(str(db))}\nthen run the command again (autograde grades "
                "again what the backup does not hold).")
    elif n:
        msg += (f" None of the {n} backup(s) in {workspace / 'backups'} is a valid gradebook either: restore "
                f"{db} from a copy of your own, or move it aside (mv {shlex.quote(str(db))} "
                f"{shlex.quote(str(db) + '.damaged')}) to start a new, empty gradebook (grades are then lost).")
    else:
        msg += (f" There is no backup in {workspace / 'backups'} (autograde makes one before each run): restore "
                f"{db} from a copy of your own, or move it aside (mv {shlex.quote(str(db))} "
                f"{shlex.quote(str(db) + '.damaged')}) to start a new, empty gradebook (grades are then lost).")
    raise SystemExit(msg)


def check_workspace(workspace: Path) -> None:
    """Make the workspace if it is missing; stop (SystemExit: exit 2) when it cannot be made or written."""
    advice = "pass --workspace or set W7_WORKSPACE to a folder you can write"
    if workspace.exists() and not workspace.is_dir():
        raise SystemExit(f"the instructor workspace {workspace} is not a folder: {advice}")
    try:  # the instructor workspace (gradebook, submissions): created on first use, private to its owner
        workspace.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise SystemExit(f"cannot create the instructor workspace {workspace}: {e.strerror or e}; {advice}") from None
    try:  # os.access trusts the permission bits (and says yes to root): only a real write tells
        fd, probe = tempfile.mkstemp(prefix=".w7-write-test-", dir=workspace)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        ro = " (a read-only file system)" if getattr(e, "errno", None) == 30 else ""
        raise SystemExit(f"the instructor workspace {workspace} cannot be written{ro}: {e.strerror or e}. Make it "
                         f"writable (check its mount and owner: ls -ld {shlex.quote(str(workspace))}), or {advice}. "
                         "Nothing was changed.") from None
