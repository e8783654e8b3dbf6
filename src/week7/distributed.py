"""Launching ranks for torch.distributed from a notebook or a script, on CPU (gloo) or GPUs (NCCL).

``launch(fn, world_size, *args)`` starts ``world_size`` processes, joins them into one process group, calls
``fn(rank, world_size, *args)`` in each and returns the list of what every rank returned (rank order). It is
the course's stand-in for ``torchrun`` on one machine; the same ``fn`` runs unchanged under ``torchrun`` through
``run_from_env(fn)`` (see docs/parallelism.md for the multi-node command).

What it promises:

- **Device choice.** ``choose_backend(world_size)`` picks NCCL with one GPU per rank when that many GPUs are
  visible, otherwise gloo on CPU. Inside a rank, ``rank_device()`` gives the device to put tensors on
  (``cuda:LOCAL_RANK`` under NCCL, ``cpu`` under gloo), so student code never hard-codes a device.
- **A free port** for the rendezvous (``free_port()``), so two launches never collide.
- **Errors name their rank.** If a rank raises, ``launch`` raises ``RankError`` whose message names the first
  rank that failed, the exception and its traceback (the ranks that then failed because a peer vanished are
  listed after it). A rank that dies without a word (killed, segfault) is reported with its exit code.
- **Timeouts.** ``timeout`` seconds for the whole launch; the ranks still running are named in the error.
- **No process left behind.** Whatever happens (success, error, timeout, Ctrl-C in the notebook), every rank
  is terminated, then killed, then joined before ``launch`` returns or raises.
- **Rank output.** Each rank's stdout and stderr go to a log file, printed afterwards on the caller's *stdout*
  with a ``[rank r]`` prefix (ordered, and never on stderr: an nbgrader test cell that writes to stderr scores 0).

How ``fn`` reaches the ranks (the key difficulty). Functions written in a notebook live in ``__main__``, which
``spawn`` cannot pickle: a spawned child imports ``__main__`` afresh and finds no such function. So on Linux the
ranks are **forked**: the child inherits the parent's memory, notebook functions included, and nothing is
pickled on the way in. Fork is safe for CPU ranks and for CUDA ranks *as long as the parent has not initialised
CUDA* (a forked child cannot use a CUDA context made by its parent). ``launch`` checks
``torch.cuda.is_initialized()``: when CUDA is already live in the parent, it falls back to ``spawn`` and ships
``fn`` by value with ``cloudpickle`` if that is installed; if it is not, it stops with a message that says what
to do (restart the kernel and launch before touching CUDA, or move ``fn`` into an importable module). Results
come back pickled by value (tensors moved to CPU first), so return plain data or CPU tensors.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import pickle
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import wait as _wait
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist

__all__ = ["launch", "free_port", "choose_backend", "rank_device", "run_from_env", "RankError",
           "LaunchTimeout", "Backend"]

# Ask torch to count GPUs through NVML, which does not create a CUDA context in this process (fork stays safe).
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")

_GRACE_S = 3.0  # after a rank fails, how long the others get to report (they usually fail fast: peer gone)


class RankError(RuntimeError):
    """A rank raised or died. ``rank`` is the first rank that failed; ``errors`` maps rank -> report."""

    def __init__(self, message: str, rank: int, errors: dict[int, str]):
        super().__init__(message)
        self.rank = rank
        self.errors = errors


class LaunchTimeout(RankError, TimeoutError):
    """The launch ran past its timeout; ``errors`` names the ranks that had not finished."""


@dataclass(frozen=True)
class Backend:
    """Which process-group backend and device type the ranks use."""

    name: str    # "gloo" or "nccl"
    device: str  # "cpu" or "cuda"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def choose_backend(world_size: int, prefer: str | None = None) -> Backend:
    """NCCL on CUDA when at least ``world_size`` GPUs are visible (one per rank), else gloo on CPU.

    Args:
        world_size: number of ranks.
        prefer: "gloo" or "nccl" to force a backend (NCCL without enough GPUs raises ValueError).
    """
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if prefer is None:
        return Backend("nccl", "cuda") if n_gpu >= world_size else Backend("gloo", "cpu")
    if prefer == "gloo":
        return Backend("gloo", "cpu")
    if prefer == "nccl":
        if n_gpu < world_size:
            raise ValueError(f"NCCL needs one GPU per rank: {world_size} ranks but {n_gpu} GPU(s) visible. "
                             "Use backend='gloo' (CPU) or fewer ranks.")
        return Backend("nccl", "cuda")
    raise ValueError(f"backend must be 'gloo', 'nccl' or None, got {prefer!r}")


def rank_device() -> torch.device:
    """The device this rank should use: ``cuda:LOCAL_RANK`` under NCCL, ``cpu`` under gloo (or no group)."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return torch.device("cpu")


def _to_cpu(obj: Any) -> Any:
    """Move tensors inside lists, tuples and dicts to CPU (detached) so the parent can unpickle them anywhere."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _redirect_output(log_path: str) -> None:
    """Send this process's fd 1 and 2 (C++ warnings included) and Python's sys.stdout/err to a log file."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
    sys.stderr = sys.stdout


def _rank_main(payload: bytes | Callable, rank: int, world_size: int, backend: str, port: int,
               args: tuple, kwargs: dict, conn, log_path: str, threads: int, timeout: float) -> None:
    """Body of one rank: join the group, run fn, send ('ok'|'error', ...) back through the pipe."""
    _redirect_output(log_path)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world_size))
    msg: tuple
    try:
        fn = pickle.loads(payload) if isinstance(payload, bytes) else payload
        torch.set_num_threads(threads)
        if backend == "nccl":
            torch.cuda.set_device(rank)
        dist.init_process_group(backend, rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=max(5.0, timeout)))
        result = fn(rank, world_size, *args, **kwargs)
        msg = ("ok", pickle.dumps(_to_cpu(result)))
    except BaseException as e:  # noqa: BLE001 - report everything, including SystemExit/KeyboardInterrupt
        msg = ("error", f"{type(e).__name__}: {e}", traceback.format_exc(), time.time())
    try:
        conn.send(msg)
    except Exception as e:  # the result itself could not be pickled
        conn.send(("error", f"the result of rank {rank} could not be sent back: {type(e).__name__}: {e}",
                   traceback.format_exc(), time.time()))
    finally:
        conn.close()
    try:
        if dist.is_initialized():
            dist.destroy_process_group()
    except Exception:
        pass
    sys.stdout.flush()
    os._exit(0)  # skip atexit handlers inherited from the parent (a forked Jupyter kernel has many)


def _pick_start_method(fn: Callable, backend: str, start_method: str | None) -> tuple[str, bytes | Callable]:
    """fork when possible (notebook functions need no pickling); spawn + cloudpickle when CUDA is live."""
    # Only NCCL ranks use CUDA; gloo ranks stay on CPU, so forking them is safe even with CUDA live here.
    cuda_live = backend == "nccl" and torch.cuda.is_available() and torch.cuda.is_initialized()
    if start_method is None:
        start_method = "fork" if (sys.platform.startswith("linux") and not cuda_live) else "spawn"
    if start_method == "fork":
        if cuda_live:
            raise RuntimeError("start_method='fork' cannot be used once CUDA is initialised in this process "
                               "(forked children cannot use the parent's CUDA context). Use start_method=None.")
        return "fork", fn
    if start_method not in ("spawn", "forkserver"):
        raise ValueError(f"start_method must be 'fork', 'spawn', 'forkserver' or None, got {start_method!r}")
    try:
        return start_method, pickle.dumps(fn)
    except Exception as err:
        try:
            import cloudpickle  # type: ignore[import-not-found]
        except ImportError:
            why = ("CUDA is already initialised in this process, so ranks cannot be forked"
                   if cuda_live else f"start_method={start_method!r} needs a picklable function")
            raise RuntimeError(
                f"cannot send {getattr(fn, '__qualname__', fn)!r} to the ranks: {why}, and a function defined in "
                "a notebook cannot be pickled by reference. Either restart the kernel and call launch() before "
                "anything touches CUDA, or move the function into an importable .py module, or "
                "`pip install cloudpickle` (then it is shipped by value).") from err
        return start_method, cloudpickle.dumps(fn)


def _kill_all(procs: list) -> None:
    """terminate, wait, kill, join: no rank survives this."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + 2.0
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
    for p in procs:
        p.join()
        p.close()


def launch(fn: Callable[..., Any], world_size: int, *args: Any, backend: str | None = None,
           timeout: float = 120.0, start_method: str | None = None, threads_per_rank: int = 1,
           show_output: bool = True, **kwargs: Any) -> list[Any]:
    """Run ``fn(rank, world_size, *args, **kwargs)`` on ``world_size`` ranks in one process group.

    Args:
        fn: the function every rank runs. The process group is initialised before it is called and destroyed
            after; inside, use ``torch.distributed`` freely and ``rank_device()`` for the device.
        world_size: number of ranks (>= 1).
        backend: "gloo", "nccl" or None (NCCL when one GPU per rank is available, else gloo).
        timeout: seconds for the whole launch, start-up included; ranks still running are killed.
        start_method: None (fork on Linux unless CUDA is live in this process, else spawn), or a
            multiprocessing start method.
        threads_per_rank: torch intra-op threads per rank (1 keeps 4 ranks on 2 cores from fighting; more than
            1 needs spawn, because OpenMP is not fork-safe).
        show_output: print what the ranks wrote (stdout and stderr) on this process's stdout, per rank.

    Returns:
        What each rank returned, in rank order (tensors moved to CPU).

    Raises:
        ValueError: bad world_size, backend or timeout.
        RankError: a rank raised or died; the message names the first failing rank and its traceback.
        LaunchTimeout: the launch took longer than ``timeout``.
    """
    if not isinstance(world_size, int) or isinstance(world_size, bool) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    if not isinstance(threads_per_rank, int) or threads_per_rank < 1:
        raise ValueError(f"threads_per_rank must be an int >= 1, got {threads_per_rank!r}")
    be = choose_backend(world_size, backend)
    method, payload = _pick_start_method(fn, be.name, start_method)
    if method == "fork" and threads_per_rank > 1:
        # Measured: a forked child that runs a multi-threaded op hangs once the parent has used its OpenMP pool
        # (GNU OpenMP is not fork-safe). One thread per rank never enters OpenMP.
        raise ValueError("threads_per_rank > 1 is not safe with forked ranks (OpenMP is not fork-safe: the ranks "
                         "hang once this process has run a multi-threaded op). Keep threads_per_rank=1, or pass "
                         "start_method='spawn' with an importable function.")
    ctx = mp.get_context(method)
    port = free_port()
    logdir = Path(tempfile.mkdtemp(prefix="w7-ranks-"))
    procs, conns = [], {}
    results: dict[int, Any] = {}
    errors: dict[int, str] = {}
    when: dict[int, float] = {}
    first_failure: int | None = None
    fail_time = 0.0  # monotonic time of the first failure read
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        for rank in range(world_size):
            recv, send = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_rank_main, name=f"w7-rank{rank}", daemon=True,
                            args=(payload, rank, world_size, be.name, port, args, kwargs, send,
                                  str(logdir / f"rank{rank}.log"), threads_per_rank, timeout))
            p.start()
            send.close()  # the child holds the sending end; EOF on recv then means it died
            procs.append(p)
            conns[rank] = recv
        deadline = time.monotonic() + timeout
        pending = dict(conns)
        while pending:
            now = time.monotonic()
            if first_failure is not None:
                deadline = min(deadline, fail_time + _GRACE_S)
            if now >= deadline:
                break
            ready = _wait(list(pending.values()), timeout=min(0.5, deadline - now))
            for conn in ready:
                rank = next(r for r, c in pending.items() if c is conn)
                try:
                    msg = conn.recv()
                except (EOFError, OSError):
                    procs[rank].join(1.0)
                    code = procs[rank].exitcode
                    msg = ("error", f"rank {rank} died without reporting (exit code {code})", "", time.time())
                del pending[rank]
                if msg[0] == "ok":
                    results[rank] = pickle.loads(msg[1])
                else:
                    errors[rank] = (msg[1] + ("\n" + msg[2] if msg[2] else "")).rstrip()
                    when[rank] = msg[3]
                    if first_failure is None:
                        fail_time = time.monotonic()
                    # the root cause is the rank that failed first (by its own clock), not the first we read
                    first_failure = min(when, key=lambda r: (when[r], r))
        if pending and first_failure is None:
            names = ", ".join(str(r) for r in sorted(pending))
            errs = {r: "still running at the timeout" for r in pending}
            raise LaunchTimeout(
                f"launch of {world_size} ranks timed out after {timeout:g} s; rank(s) {names} had not finished "
                "(a rank waiting for a send/recv or collective its peers never make hangs: check that every "
                "rank makes the same collective calls in the same order). All ranks were stopped.",
                rank=min(pending), errors=errs)
        if first_failure is not None:
            for r in pending:
                errors.setdefault(r, "stopped by the launcher after another rank failed")
            main = errors[first_failure]
            others = [f"rank {r}: {errors[r].splitlines()[0]}" for r in sorted(errors) if r != first_failure]
            text = (f"rank {first_failure} of {world_size} failed: {main.splitlines()[0]}\n\n"
                    f"--- traceback from rank {first_failure} ---\n{main}")
            if others:
                text += "\n\n--- the other ranks (often a consequence of the first failure) ---\n" + "\n".join(others)
            raise RankError(text, rank=first_failure, errors=errors)
        return [results[r] for r in range(world_size)]
    finally:
        _kill_all(procs)
        for c in conns.values():
            c.close()
        if show_output:
            for rank in range(world_size):
                log = logdir / f"rank{rank}.log"
                text = log.read_text(errors="replace").rstrip() if log.exists() else ""
                if text:
                    print("\n".join(f"[rank {rank}] {line}" for line in text.splitlines()), file=sys.stdout)
        for log in logdir.glob("*"):
            log.unlink()
        logdir.rmdir()


def run_from_env(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn(rank, world_size, *args)`` in a process started by ``torchrun`` (env:// rendezvous).

    torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; this joins the group with NCCL
    when this node has a GPU for every local rank, else gloo, calls ``fn`` and tears the group down.
    """
    missing = [k for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(f"run_from_env() expects to be started by torchrun; missing env vars {missing}. "
                           "From a notebook or a plain script use launch(fn, world_size) instead.")
    local_ws = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    be = choose_backend(local_ws)
    if be.name == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(be.name)
    try:
        return fn(dist.get_rank(), dist.get_world_size(), *args, **kwargs)
    finally:
        dist.destroy_process_group()


def _selftest(rank: int, world_size: int) -> float:
    """All-reduce a known tensor: every rank must see sum(1..world_size)."""
    x = torch.full((4,), float(rank + 1), device=rank_device())
    dist.all_reduce(x)
    expected = world_size * (world_size + 1) / 2
    if not torch.allclose(x.cpu(), torch.full((4,), expected)):
        raise AssertionError(f"rank {rank}: all_reduce gave {x.tolist()}, expected {expected}")
    return float(x[0])


if __name__ == "__main__":  # `torchrun ... -m week7.distributed` or `python -m week7.distributed [N]`
    if "RANK" in os.environ:
        value = run_from_env(_selftest)
        print(f"rank {os.environ['RANK']}: all_reduce ok ({value:g}) on {rank_device()}", flush=True)
    else:
        n = int(sys.argv[1]) if len(sys.argv) > 1 else 2
        t0 = time.perf_counter()
        out = launch(_selftest, n)
        print(f"{n} ranks ({choose_backend(n).name}): all_reduce ok {out} in {time.perf_counter() - t0:.2f} s")
