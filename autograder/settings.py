"""Course settings for the autograder: paths, course id, limits. Override with environment variables.

nbgrader's own vocabulary: `source` = solutions/, `release` = exercises/ (both in the repository, committed);
the gradebook and `submitted/`, `autograded/`, `feedback/` live in the instructor workspace (W7_WORKSPACE,
default <repo>/workspace/, which .gitignore excludes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number; unset it or give seconds/bytes as a number") from None


# Files an operating system or an archiver leaves in an export folder: never a student, never a submitted file.
LITTER = ("__MACOSX", ".DS_Store", "Thumbs.db", "ehthumbs.db", "desktop.ini", ".*")


def is_litter(name: str) -> bool:
    """True for OS litter (`__MACOSX`, `.DS_Store`, `Thumbs.db`, `desktop.ini`) and every dot file or folder."""
    from fnmatch import fnmatch

    return any(fnmatch(name.lower(), pat.lower()) for pat in LITTER)


@dataclass
class Settings:
    course_root: Path = REPO  # holds solutions/ and exercises/
    workspace: Path = field(default_factory=lambda: Path(os.environ.get("W7_WORKSPACE", REPO / "workspace")))
    guard: bool = True  # the in-kernel integrity guard (off only to measure its cost)
    course_id: str = field(default_factory=lambda: os.environ.get("W7_COURSE_ID", "week7-advanced-transformers"))
    # per cell (nbgrader Execute.timeout) and per notebook (wall clock), seconds
    cell_timeout_s: int = field(default_factory=lambda: int(_env_float("W7_CELL_TIMEOUT", 120)))
    notebook_timeout_s: float = field(default_factory=lambda: _env_float("W7_NOTEBOOK_TIMEOUT", 300))
    cpu_seconds: int = field(default_factory=lambda: int(_env_float("W7_CPU_SECONDS", 600)))  # RLIMIT_CPU
    memory_bytes: int = field(default_factory=lambda: int(_env_float("W7_MEMORY_BYTES", 8 * 2**30)))  # RLIMIT_AS
    # RLIMIT_NPROC counts every process of the sandbox uid (all parallel kernels together)
    max_processes: int = field(default_factory=lambda: int(_env_float("W7_MAX_PROCESSES", 256)))
    output_bytes_per_cell: int = field(default_factory=lambda: int(_env_float("W7_OUTPUT_BYTES", 200_000)))
    file_bytes: int = field(default_factory=lambda: int(_env_float("W7_FILE_BYTES", 256 * 2**20)))  # RLIMIT_FSIZE
    # files never copied from a submission (besides everything that is not one of the assignment's notebooks)
    # "*.md": the MyST sources of solutions/ (autograder/source.py) never go into a release with the notebooks
    ignore: tuple[str, ...] = (".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*", "*.md", "probes.py")
    sandbox: str = field(default_factory=lambda: os.environ.get("W7_SANDBOX", "auto"))  # auto | bwrap | unshare | none (none: tests only)

    @property
    def solutions(self) -> Path:
        return self.course_root / "solutions"

    @property
    def exercises(self) -> Path:
        return self.course_root / "exercises"

    @property
    def db_path(self) -> Path:
        return self.workspace / "gradebook.db"
