"""benchmarks/bench_attention_kernel.py runs on a CPU: the solution's kernels in Triton's interpreter, checked
against SDPA, and the line that says speed needs a GPU. (Its CUDA path needs a GPU: tools/gpu_check_06.sh.)"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None or torch.cuda.is_available(),
                                reason="the CPU path: needs triton, and no CUDA device")


def _bench():
    os.environ.setdefault("TRITON_INTERPRET", "1")
    spec = importlib.util.spec_from_file_location("bench_attention_kernel", ROOT / "benchmarks" / "bench_attention_kernel.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cpu_run_checks_the_kernels_and_says_speed_needs_a_gpu(capsys):
    """Check that a small CPU run prints each length's error against SDPA (small) and the GPU caveat."""
    assert _bench().main(["--n", "32", "48", "--repeats", "1", "--heads", "1", "--d-head", "16"]) == 0
    out = capsys.readouterr().out
    errors = [float(e) for e in re.findall(r"flash vs SDPA max error ([0-9.e+-]+)", out)]
    assert len(errors) == 2 and max(errors) < 1e-5, out
    assert "Triton block-sparse (interpreter)" in out and "speed needs a GPU" in out, out


def test_exercise_04_layout_counts_the_shared_keys_in_whole_blocks():
    """Check the CUDA path's layout: n/s strided + g global keys rounded up to blocks of 128, and a band of 2."""
    bench = _bench()
    assert bench.ex04_layout(65536, 8) == (2, 65)   # 8192 + 8 keys -> 65 blocks
    assert bench.ex04_layout(4096, 128) == (2, 2)   # 32 + 128 keys -> 2 blocks


def test_bad_arguments_are_explained(capsys):
    with pytest.raises(SystemExit):
        _bench().main(["--d-head", "24"])
    assert "power of two" in capsys.readouterr().err
