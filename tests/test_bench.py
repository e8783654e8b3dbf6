"""Tests for week7.bench: timing with warm-up, repeats and device sync; peak memory on CPU (and CUDA)."""

from __future__ import annotations

import time

import pytest
import torch

from week7 import bench

MB = 1_000_000


def test_time_fn_counts_warmup_and_repeats():
    calls = []
    t = bench.time_fn(lambda x: calls.append(x), 3, repeats=4, warmup=2)
    assert len(calls) == 6, "warm-up calls and timed calls must both run"
    assert len(t.times) == 4 and t.warmup == 2
    assert all(s >= 0 for s in t.times)
    assert t.min <= t.median <= t.max


def test_time_fn_measures_the_work():
    t = bench.time_fn(time.sleep, 0.02, repeats=3, warmup=0, label="sleep")
    assert 0.02 <= t.median < 0.5
    assert "sleep" in str(t) and "ms" in str(t)


def test_time_fn_synchronises_before_and_after_each_call(monkeypatch):
    """On a CUDA device the clock must not stop before the queued kernels finish."""
    log = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda dev=None: log.append("sync"))
    bench.time_fn(lambda: log.append("call"), repeats=3, warmup=1, device="cuda")
    assert log == ["call"] + ["sync", "call", "sync"] * 3


def test_device_is_taken_from_tensor_arguments():
    assert bench.resolve_device(None, ([1, torch.zeros(1, device="meta")],)).type == "meta"
    assert bench.resolve_device(None, (1, "a")).type == "cpu"
    assert bench.resolve_device("cpu").type == "cpu"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_repeats_are_explained(bad):
    with pytest.raises(ValueError, match="repeats"):
        bench.time_fn(lambda: None, repeats=bad)


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="warmup"):
        bench.time_fn(lambda: None, warmup=-1)
    with pytest.raises(TypeError, match="callable"):
        bench.time_fn(torch.zeros(3))
    with pytest.raises(ValueError, match="device"):
        bench.time_fn(lambda: None, device="not-a-device")
    with pytest.raises(ValueError, match="non-empty dict"):
        bench.compare({})


def test_cpu_peak_memory_sees_the_peak_not_the_end():
    def one_then_another():  # 8 MB live at most: the first buffer is freed before the second exists
        a = torch.ones(2 * MB, dtype=torch.float32)
        del a
        b = torch.ones(2 * MB, dtype=torch.float32)
        return b.sum()

    def both_at_once():  # 16 MB live at once
        a = torch.ones(2 * MB, dtype=torch.float32)
        b = torch.ones(2 * MB, dtype=torch.float32)
        return (a + 0).sum() + b.sum()  # a + 0 is a third 8 MB buffer

    p1 = bench.peak_memory(one_then_another)
    p2 = bench.peak_memory(both_at_once)
    assert 8 * MB <= p1 < 8.5 * MB, p1
    assert 24 * MB <= p2 < 24.5 * MB, p2


def test_cpu_peak_memory_ignores_tensors_that_existed_before():
    big = torch.ones(4 * MB)
    peak = bench.peak_memory(lambda t: t.sum(), big)
    assert peak < 1 * MB
    assert bench.peak_memory(lambda: None) == 0


def test_compare_interleaves_and_reports_ratios():
    order = []
    fns = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    table = bench.compare(fns, repeats=3, warmup=0)
    assert order == ["a", "b"] * 3, "candidates must run round-robin so that drift hits them equally"
    assert list(table.name) == ["a", "b"]
    assert table.ratio.iloc[0] == pytest.approx(1.0)
    assert set(table.columns) >= {"median_s", "min_s", "ratio"}


def test_compare_with_memory_ranks_the_bigger_allocation_higher():
    table = bench.compare({"small": lambda: torch.ones(MB // 4), "large": lambda: torch.ones(MB)},
                          repeats=2, warmup=0, memory=True)
    small, large = table.peak_bytes
    assert small == pytest.approx(MB, rel=0.05) and large == pytest.approx(4 * MB, rel=0.05)


def test_formatting():
    assert bench.format_seconds(0.0000123) == "12.3 us"
    assert bench.format_seconds(0.0123) == "12.30 ms"
    assert bench.format_seconds(2.5) == "2.50 s"
    assert bench.format_bytes(512) == "512 B"
    assert bench.format_bytes(3 * 2**20) == "3.00 MiB"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (checked on the GPU machine)")
def test_cuda_timing_and_peak_memory():
    x = torch.randn(2048, 2048, device="cuda")
    t = bench.time_fn(torch.matmul, x, x, repeats=5, warmup=2)
    assert t.device.startswith("cuda") and t.median > 0
    peak = bench.peak_memory(lambda: torch.empty(64 * MB, dtype=torch.uint8, device="cuda"))
    assert 64 * MB <= peak < 66 * MB
    assert bench.peak_memory(lambda a: a.sum(), x) < 1 * MB
