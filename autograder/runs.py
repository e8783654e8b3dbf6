"""What an autograde run leaves running if it is killed, and how the next run ends it.

Each autograde run of a workspace writes a run folder `<workspace>/running/<pid>-<start>/` (the grading parent's
pid and its start time, field 22 of /proc/<pid>/stat) and, in it, one empty file per process it starts:
`worker-<pid>-<start>` (each grading worker, written by the worker itself) and `kernel-<pid>-<start>` (each
kernel: the sandbox's outermost process, or the kernel itself unsandboxed). A run that ends removes its folder.

A run killed with kill -9 cannot: its workers go on grading (they are not its process group's when the parent
alone was killed) and keep their sandboxed kernels alive. The next autograde run (`reap`) looks at every run
folder whose parent is gone (no process with that pid and start time) and kills each recorded process that still
has the recorded start time, so a pid the system has given to another process since is never touched. Then it
removes the folder. A folder whose parent is alive belongs to a run still going on and is left alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

RUNNING = "running"
_run_dir: Path | None = None  # this process's run folder (inherited by forked workers)


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, start: int) -> bool:
    if start_time(pid) != start:
        return False
    try:  # a zombie (killed, not yet reaped by its parent) is not alive
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def begin(workspace: Path) -> Path:
    """Record this process as a grading run's parent; its workers and kernels record themselves under it."""
    global _run_dir
    pid = os.getpid()
    d = Path(workspace) / RUNNING / f"{pid}-{start_time(pid)}"
    d.mkdir(parents=True, exist_ok=True)
    _run_dir = d
    return d


def end() -> None:
    """The run ended by itself: nothing of it is left to stop."""
    global _run_dir
    if _run_dir is not None:
        shutil.rmtree(_run_dir, ignore_errors=True)
    _run_dir = None


def note(kind: str, pid: int | None = None) -> None:
    """Record a process (this one by default) of the current run: kind "worker" or "kernel"."""
    if _run_dir is None:
        return
    pid = os.getpid() if pid is None else pid
    start = start_time(pid)
    if start is None:
        return
    try:
        (_run_dir / f"{kind}-{pid}-{start}").touch()
    except OSError:  # the run folder is gone (the run ended): nothing to record
        pass


def note_kernel(km) -> None:
    """Record the kernel a kernel manager started (jupyter_client's provisioner knows its pid)."""
    pid = getattr(getattr(km, "provisioner", None), "pid", None)
    if pid:
        note("kernel", int(pid))


def reap(workspace: Path) -> str | None:
    """Kill what runs of this workspace that died left running; one line saying what was stopped, or None."""
    root = Path(workspace) / RUNNING
    if not root.is_dir():
        return None
    lines = []
    for d in sorted(root.iterdir()):
        try:
            ppid, pstart = (int(x) for x in d.name.split("-"))
        except ValueError:
            continue
        if _alive(ppid, pstart):
            continue  # a run going on now (another autograde of this workspace)
        stopped = {"worker": 0, "kernel": 0}
        for _ in range(3):  # workers first (they start kernels), then kernels; again for any recorded meanwhile
            procs = []
            for f in d.iterdir() if d.is_dir() else []:
                try:
                    kind, pid, start = f.name.split("-")
                    procs.append((kind, int(pid), int(start), f))
                except ValueError:
                    continue
            if not procs:
                break
            for kind, pid, start, f in sorted(procs, key=lambda x: x[0] != "worker"):
                if _alive(pid, start):
                    try:
                        os.kill(pid, signal.SIGKILL)
                        stopped[kind] = stopped.get(kind, 0) + 1
                    except OSError:
                        pass
                f.unlink(missing_ok=True)
            time.sleep(0.2)
        shutil.rmtree(d, ignore_errors=True)
        if any(stopped.values()):
            lines.append(f"{stopped['worker']} worker(s) and {stopped['kernel']} kernel(s) of run {ppid}")
    if not lines:
        return None
    return "stopped what an interrupted earlier autograde run left running: " + "; ".join(lines)
