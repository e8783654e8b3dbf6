"""The sandbox lets Triton run: its interpreter on a CPU-only sandbox, its cache in the sandbox's private /tmp."""

from __future__ import annotations

import subprocess
import sys

import pytest

from autograder.sandbox import TRITON_CACHE, SandboxUnavailable, check, cuda_visible_in_sandbox, kernel_env, wrap_argv
from autograder.settings import Settings

PROBE = r"""
import os, pathlib
cache = pathlib.Path(os.environ["TRITON_CACHE_DIR"])
cache.mkdir(parents=True, exist_ok=True)
(cache / "probe").write_text("ok")
print("INTERPRET", os.environ.get("TRITON_INTERPRET"))
print("CACHE", cache, (cache / "probe").read_text())
import torch, triton, triton.language as tl

@triton.jit
def _double(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    m = offs < n
    tl.store(x_ptr + offs, 2 * tl.load(x_ptr + offs, mask=m, other=0.0), mask=m)

x = torch.arange(5, dtype=torch.float32)
_double[(1,)](x, 5, BLOCK=8)
print("KERNEL", x.tolist())
"""


def test_kernel_env_turns_the_interpreter_on_without_a_gpu():
    """Check that without a CUDA device in the sandbox the kernel gets TRITON_INTERPRET=1 and a cache in /tmp."""
    env = kernel_env(Settings(), threads=1)
    assert env["TRITON_CACHE_DIR"] == TRITON_CACHE and TRITON_CACHE.startswith("/tmp/"), env
    assert not cuda_visible_in_sandbox()
    assert env.get("TRITON_INTERPRET") == "1", "a CPU-only sandbox must run Triton kernels in the interpreter"


def test_a_triton_kernel_runs_in_the_real_sandbox(tmp_path):
    """Check that inside bubblewrap the variables are set, the cache is writable and a masked kernel runs."""
    try:
        plan = check("auto")
    except SandboxUnavailable as e:
        pytest.fail(f"the sandbox does not work on this machine: {e}")
    argv = wrap_argv(plan, [sys.executable, "-c", PROBE], work=tmp_path, kernel_dir=None, settings=Settings())
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "INTERPRET 1" in r.stdout, r.stdout
    assert f"CACHE {TRITON_CACHE} ok" in r.stdout, r.stdout
    assert "KERNEL [0.0, 2.0, 4.0, 6.0, 8.0]" in r.stdout, r.stdout
    assert not (tmp_path / ".triton").exists(), "the cache must stay in the sandbox's /tmp, not the work folder"
