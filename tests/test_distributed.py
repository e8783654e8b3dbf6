"""The rank launcher (week7.distributed): results, errors that name their rank, timeouts, no process left behind.

Every test runs real ranks with gloo on CPU and checks, before and after, that this process has no child left.
"""

from __future__ import annotations

import os
import time

import psutil
import pytest
import torch
import torch.distributed as dist

from week7.distributed import (LaunchTimeout, RankError, _selftest, choose_backend, free_port, launch,
                               rank_device, run_from_env)


def _alive_rank_like(p: psutil.Process) -> bool:
    try:
        if not p.is_running() or p.status() == psutil.STATUS_ZOMBIE:
            return False
        return "resource_tracker" not in " ".join(p.cmdline())
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def no_leftover_children():
    """Fail the test if it leaves any child process of this one alive (recursively).

    multiprocessing's resource tracker is not counted: ``spawn`` starts one per interpreter, shared by every
    later launch, and it exits with the interpreter (it is not a rank).
    """
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    deadline = time.monotonic() + 2.0
    while True:
        after = {p.pid for p in me.children(recursive=True) if _alive_rank_like(p)}
        left = after - before
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"processes left behind: {sorted(left)}"


def _gather_ranks(rank: int, world_size: int, scale: float) -> dict:
    """Each rank all-gathers its rank and returns what it saw, with a tensor result."""
    x = torch.tensor([float(rank)], device=rank_device())
    out = [torch.zeros_like(x) for _ in range(world_size)]
    dist.all_gather(out, x)
    return {"rank": rank, "world_size": world_size, "seen": torch.cat(out) * scale,
            "backend": dist.get_backend(), "env_rank": int(os.environ["RANK"])}


@pytest.mark.parametrize("world_size", [2, 4])
def test_results_in_rank_order(world_size, no_leftover_children):
    out = launch(_gather_ranks, world_size, 2.0, backend="gloo", timeout=60)
    assert [o["rank"] for o in out] == list(range(world_size))
    assert all(o["env_rank"] == o["rank"] and o["world_size"] == world_size for o in out)
    assert all(o["backend"] == "gloo" for o in out)
    for o in out:
        assert type(o["seen"]) is torch.Tensor
        assert o["seen"].tolist() == [2.0 * r for r in range(world_size)]


def test_selftest_all_reduce(no_leftover_children):
    assert launch(_selftest, 4, backend="gloo") == [10.0] * 4


def _raise_on_rank(rank: int, world_size: int, bad_rank: int) -> int:
    if rank == bad_rank:
        raise ValueError(f"deliberate failure on rank {rank}")
    dist.barrier()  # the healthy ranks block here until the failed peer's sockets close
    return rank


@pytest.mark.parametrize("world_size,bad_rank", [(2, 1), (4, 2), (4, 0)])
def test_rank_that_raises_is_named(world_size, bad_rank, no_leftover_children):
    t0 = time.monotonic()
    with pytest.raises(RankError) as info:
        launch(_raise_on_rank, world_size, bad_rank, backend="gloo", timeout=60)
    err = info.value
    assert err.rank == bad_rank
    assert str(err).startswith(f"rank {bad_rank} of {world_size} failed: ValueError: deliberate failure")
    assert "Traceback" in str(err) and "_raise_on_rank" in str(err)
    assert set(err.errors) == set(range(world_size))  # every rank is accounted for
    assert time.monotonic() - t0 < 30  # the others are stopped, not waited on until the timeout


def _hang_on_rank0(rank: int, world_size: int) -> int:
    if rank == 0:
        time.sleep(600)
    return rank


def test_timeout_names_the_hanging_rank(no_leftover_children):
    t0 = time.monotonic()
    with pytest.raises(LaunchTimeout) as info:
        launch(_hang_on_rank0, 2, backend="gloo", timeout=3)
    assert time.monotonic() - t0 < 10
    assert info.value.rank == 0 and "rank(s) 0 had not finished" in str(info.value)


def _die_on_rank1(rank: int, world_size: int) -> int:
    if rank == 1:
        os._exit(7)
    dist.barrier()
    return rank


def test_rank_that_dies_silently(no_leftover_children):
    with pytest.raises(RankError) as info:
        launch(_die_on_rank1, 2, backend="gloo", timeout=30)
    assert info.value.rank == 1 and "exit code 7" in str(info.value)


def _talk(rank: int, world_size: int) -> None:
    import sys
    print(f"hello {rank}")
    print(f"warning {rank}", file=sys.stderr)


def test_rank_output_goes_to_stdout_with_prefix(capfd, no_leftover_children):
    launch(_talk, 2, backend="gloo")
    out, err = capfd.readouterr()
    assert "[rank 0] hello 0" in out and "[rank 1] hello 1" in out and "[rank 1] warning 1" in out
    assert "warning" not in err  # nbgrader scores a test cell that writes to stderr 0


def test_bad_input_messages():
    with pytest.raises(ValueError, match="world_size"):
        launch(_selftest, 0)
    with pytest.raises(ValueError, match="timeout"):
        launch(_selftest, 2, timeout=0)
    with pytest.raises(ValueError, match="backend"):
        launch(_selftest, 2, backend="mpi-please")
    with pytest.raises(ValueError, match="fork-safe"):  # measured: forked multi-threaded ranks can hang
        launch(_selftest, 2, backend="gloo", threads_per_rank=2)
    too_many = torch.cuda.device_count() + 1
    with pytest.raises(ValueError, match="one GPU per rank"):
        choose_backend(too_many, "nccl")
    with pytest.raises(RuntimeError, match="torchrun"):
        run_from_env(_selftest)


def test_device_choice_on_this_machine():
    be = choose_backend(torch.cuda.device_count() + 1)
    assert (be.name, be.device) == ("gloo", "cpu")
    assert rank_device() == torch.device("cpu")  # no process group here


def test_free_port_is_bindable():
    import socket
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_spawn_with_importable_function(no_leftover_children):
    # the path taken when CUDA is already live in the parent: the function must travel by pickle
    assert launch(_selftest, 2, backend="gloo", start_method="spawn", timeout=90) == [3.0, 3.0]


def test_spawn_refuses_unpicklable_function_with_advice():
    def local_fn(rank, world_size):  # like a notebook function: cannot be pickled by reference
        return rank
    try:
        import cloudpickle  # noqa: F401
        pytest.skip("cloudpickle is installed here, so local functions can be shipped by value")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match="importable .py module"):
        launch(local_fn, 2, backend="gloo", start_method="spawn")
