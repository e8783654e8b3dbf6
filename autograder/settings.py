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


@dataclass
class Settings:
    course_root: Path = REPO  # holds solutions/ and exercises/
    workspace: Path = field(default_factory=lambda: Path(os.environ.get("W7_WORKSPACE", REPO / "workspace")))
    course_id: str = os.environ.get("W7_COURSE_ID", "week7-advanced-transformers")
    cell_timeout_s: int = int(_env_float("W7_CELL_TIMEOUT", 60))  # per cell (nbgrader Execute.timeout)
    notebook_timeout_s: float = _env_float("W7_NOTEBOOK_TIMEOUT", 300)  # whole notebook, wall clock
    cpu_seconds: int = int(_env_float("W7_CPU_SECONDS", 600))  # RLIMIT_CPU of the kernel
    memory_bytes: int = int(_env_float("W7_MEMORY_BYTES", 4 * 2**30))  # RLIMIT_AS of the kernel
    max_processes: int = int(_env_float("W7_MAX_PROCESSES", 64))  # RLIMIT_NPROC (per sandbox user)
    output_bytes_per_cell: int = int(_env_float("W7_OUTPUT_BYTES", 200_000))  # text kept per cell
    file_bytes: int = int(_env_float("W7_FILE_BYTES", 256 * 2**20))  # RLIMIT_FSIZE of the kernel
    # files never copied from a submission (besides everything that is not one of the assignment's notebooks)
    ignore: tuple[str, ...] = (".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*")
    sandbox: str = os.environ.get("W7_SANDBOX", "auto")  # auto | bwrap | unshare | none (none: tests only)

    @property
    def solutions(self) -> Path:
        return self.course_root / "solutions"

    @property
    def exercises(self) -> Path:
        return self.course_root / "exercises"

    @property
    def db_path(self) -> Path:
        return self.workspace / "gradebook.db"
