"""Timing and peak memory, measured honestly on CPU and CUDA.

Three rules every measurement in the course follows, and that this module enforces:

1. **Synchronise the device.** CUDA kernels run asynchronously: a clock read right after a call measures
   the launch, not the work. :func:`time_fn` synchronises before starting and before stopping the clock.
2. **Warm up, then repeat.** The first call pays for lazy initialisation, kernel selection, compilation and
   cold caches. :func:`time_fn` discards ``warmup`` calls and reports the median of ``repeats`` timed calls.
3. **Compare side by side.** Absolute times on a shared machine are noisy; ratios measured in the same
   process, interleaved, are not. :func:`compare` runs the candidates round-robin and reports each one's
   ratio to the first.

:func:`peak_memory` reports the peak of the bytes that torch allocates during one call, above what was
allocated when the call started: on CUDA from the caching allocator's statistics, on CPU from the memory
events of ``torch.profiler`` (the CPU allocator keeps no peak statistic of its own). Memory allocated outside
torch (numpy, Python objects) is not counted.

Usage::

    from week7 import bench
    t = bench.time_fn(torch.matmul, a, b, repeats=10)       # Timing: t.median, t.min, t.times, str(t)
    peak = bench.peak_memory(torch.matmul, a, b)            # bytes (int)
    table = bench.compare({"dense": f, "sparse": g}, x)     # pandas DataFrame, ratio to the first
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import torch

__all__ = ["Timing", "synchronize", "time_fn", "peak_memory", "compare", "format_bytes", "format_seconds",
           "resolve_device"]


# --------------------------------------------------------------------------------------------------- devices
def resolve_device(device: str | torch.device | None = None, args: Iterable[Any] = ()) -> torch.device:
    """The device to measure on: ``device`` if given, else that of the first tensor in ``args``, else CPU."""
    if device is not None:
        try:
            return torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device must be a torch device or a string such as 'cpu' or 'cuda:0', got "
                             f"{device!r}") from exc
    for a in _flatten(args):
        if isinstance(a, torch.Tensor):
            return a.device
    return torch.device("cpu")


def _flatten(xs: Iterable[Any]):
    for x in xs:
        if isinstance(x, (list, tuple)):
            yield from _flatten(x)
        elif isinstance(x, Mapping):
            yield from _flatten(x.values())
        else:
            yield x


def synchronize(device: str | torch.device | None = None) -> None:
    """Wait until every kernel queued on ``device`` has finished (a no-op on CPU)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":  # pragma: no cover - no Apple GPU in CI
        torch.mps.synchronize()


# ---------------------------------------------------------------------------------------------------- timing
@dataclass
class Timing:
    """Wall-clock seconds of ``repeats`` calls, after ``warmup`` discarded calls, on ``device``."""

    times: list[float]
    warmup: int = 0
    device: str = "cpu"
    label: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def max(self) -> float:
        return max(self.times)

    @property
    def std(self) -> float:
        return statistics.stdev(self.times) if len(self.times) > 1 else 0.0

    def __str__(self) -> str:
        name = f"{self.label}: " if self.label else ""
        return (f"{name}{format_seconds(self.median)} median (min {format_seconds(self.min)}, max "
                f"{format_seconds(self.max)}, {len(self.times)} runs on {self.device})")


def _check_counts(repeats: int, warmup: int) -> None:
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ValueError(f"repeats must be a positive int (the number of timed calls), got {repeats!r}")
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0 (calls run before timing starts), got {warmup!r}")


def _check_callable(fn: Any, name: str = "fn") -> None:
    if not callable(fn):
        raise TypeError(f"{name} must be a callable (pass the function itself, not its result), got "
                        f"{type(fn).__name__}")


def time_fn(fn: Callable, *args, repeats: int = 5, warmup: int = 1, device: str | torch.device | None = None,
            label: str = "", **kwargs) -> Timing:
    """Time ``fn(*args, **kwargs)``: ``warmup`` untimed calls, then ``repeats`` timed ones.

    The device (given, or that of the first tensor argument) is synchronised before each clock start and
    before each clock stop, so asynchronous GPU work is counted. Returns a :class:`Timing`;
    ``timing.median`` is the number to report.
    """
    _check_callable(fn)
    _check_counts(repeats, warmup)
    dev = resolve_device(device, (args, kwargs))
    for _ in range(warmup):
        fn(*args, **kwargs)
    times = []
    for _ in range(repeats):
        synchronize(dev)
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        synchronize(dev)
        times.append(time.perf_counter() - t0)
    return Timing(times=times, warmup=warmup, device=str(dev), label=label)


# ---------------------------------------------------------------------------------------------------- memory
@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C++ profiler's start/stop lines, written straight to file descriptor 2.

    Under ipykernel, fd 2 is a pipe that the kernel forwards to the notebook, while ``sys.stderr.fileno()`` is
    a copy of the terminal's stderr, so both are redirected (Python-level errors still raise normally).
    """
    fds = {2}
    try:
        fds.add(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # pragma: no cover - stderr without a fd
        pass
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # pragma: no cover
        pass
    saved = {}
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            try:
                saved[fd] = os.dup(fd)
                os.dup2(devnull, fd)
            except OSError:  # pragma: no cover - a closed fd
                pass
        yield
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def _cpu_peak(fn: Callable, args, kwargs) -> int:
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr():
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            result = fn(*args, **kwargs)
            del result
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and str(e.device_type()).endswith("CPU")]
    running, peak = 0, 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        running += e.nbytes()
        peak = max(peak, running)
    return peak


def peak_memory(fn: Callable, *args, device: str | torch.device | None = None, **kwargs) -> int:
    """Peak bytes that torch allocates while running ``fn(*args, **kwargs)`` once, above the starting level.

    CUDA: ``torch.cuda.max_memory_allocated`` after resetting the peak statistic. CPU: the running sum of the
    allocation and free events recorded by ``torch.profiler`` (``profile_memory=True``); the first call in a
    process takes a second or two to start the profiler. Tensors that existed before the call are not counted;
    the output is counted (it is allocated during the call).
    """
    _check_callable(fn)
    dev = resolve_device(device, (args, kwargs))
    if dev.type == "cuda":
        synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        start = torch.cuda.memory_allocated(dev)
        out = fn(*args, **kwargs)
        synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) - start
        del out
        return int(max(peak, 0))
    if dev.type != "cpu":
        raise ValueError(f"peak_memory measures CPU and CUDA devices, not {dev.type!r}")
    return int(_cpu_peak(fn, args, kwargs))


# ----------------------------------------------------------------------------------------------- comparisons
def compare(fns: Mapping[str, Callable], *args, repeats: int = 5, warmup: int = 1,
            device: str | torch.device | None = None, memory: bool = False, progress: bool = False, **kwargs):
    """Time several callables on the same arguments, interleaved (round-robin), and tabulate them.

    Returns a pandas DataFrame with one row per callable: ``median_s``, ``min_s``, ``ratio`` (median over the
    first callable's median) and, with ``memory=True``, ``peak_bytes`` from :func:`peak_memory`.
    """
    import pandas as pd

    if not isinstance(fns, Mapping) or not fns:
        raise ValueError("fns must be a non-empty dict {name: callable}, e.g. {'dense': f, 'sparse': g}")
    for name, fn in fns.items():
        _check_callable(fn, f"fns[{name!r}]")
    _check_counts(repeats, warmup)
    dev = resolve_device(device, (args, kwargs))
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name](*args, **kwargs)
    times: dict[str, list[float]] = {n: [] for n in names}
    rounds = range(repeats)
    if progress:
        from tqdm.auto import tqdm

        rounds = tqdm(rounds, desc="timing", leave=False)
    for _ in rounds:
        for name in names:
            synchronize(dev)
            t0 = time.perf_counter()
            fns[name](*args, **kwargs)
            synchronize(dev)
            times[name].append(time.perf_counter() - t0)
    rows = []
    base = statistics.median(times[names[0]])
    for name in names:
        med = statistics.median(times[name])
        row = {"name": name, "median_s": med, "min_s": min(times[name]),
               "ratio": med / base if base > 0 else math.nan}
        if memory:
            row["peak_bytes"] = peak_memory(fns[name], *args, device=dev, **kwargs)
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------- format
def format_seconds(s: float) -> str:
    """12.3 us, 4.56 ms, 1.23 s."""
    if s != s:  # nan
        return "nan"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def format_bytes(n: float) -> str:
    """Bytes in binary units: 512 B, 1.5 KiB, 3.00 MiB, 1.25 GiB."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"  # pragma: no cover
