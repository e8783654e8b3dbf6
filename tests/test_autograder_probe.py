"""autograder.probe: a student's functions run again in a fresh process under limits that the wrong way cannot meet.

Unsandboxed here (plan=None, as with W7_SANDBOX=none); the grader passes its sandbox plan. The probes of exercise 04
(solutions/04-sparse-attention/probes.py) are the real ones: the solution's block-sparse attention fits, and a
dense version under the same address-space limit records nothing.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import nbformat
import pytest

from autograder import probe
from autograder.settings import Settings
from autograder.source import load_solution

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "solutions" / "04-sparse-attention"


@pytest.fixture(scope="module")
def solution():
    return load_solution("04-sparse-attention")


def _with_answer(nb, grade_id: str, extra: str):
    nb = copy.deepcopy(nb)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    cell.source += "\n\n" + extra
    return nb


def test_keep_drops_top_level_work_and_keeps_definitions():
    src = ("import math\nfrom torch import nn\nEPS = 1e-9\nNEG: float = float('-inf')\nSIZES = (1, 2)\n"
           "print('hi')\nx = torch.randn(10**9)\nfor i in range(3):\n    pass\n%timeit f()\n"
           "def f(a):\n    return a\nclass C:\n    pass\ntry:\n    import triton\nexcept ImportError:\n    triton = None\n")
    kept = probe.keep(src)
    for line in ("import math", "from torch import nn", "EPS = 1e-09", "NEG: float = float('-inf')", "def f(a):",
                 "class C:", "import triton"):
        assert line in kept, line
    for gone in ("print", "randn", "for i", "timeit"):
        assert gone not in kept, gone
    assert probe.keep("def broken(:\n") == ""


def test_the_solution_fits_and_records_the_right_values(solution):
    """Both real probes: records under the limit, the count exact, the output rows of the right shape and dtype."""
    probes = {p["grade_id"]: p for p in probe.load_probes(SOURCE)}
    mem = probe.run_one(solution, probes["sparse-attention-memory"])
    assert mem.status == "ok", mem.stderr
    assert set(mem.records) == {"probe n=16384 rows"}
    assert mem.records["probe n=16384 rows"]["value"] == {"t": "list", "v": [
        {"t": "list", "v": [{"t": "int", "v": x} for x in (1, 4, 16384, 8)]}, {"t": "str", "v": "torch.float32"},
        {"t": "bool", "v": True}]}
    assert mem.peak < mem.limit and mem.limit - mem.base == 256 * 2**20
    dense = probe.run_one(solution, probes["sparse-attention-dense"])
    assert dense.status == "ok", dense.stderr
    assert sorted(r["value"]["shape"] for r in dense.records.values()) == [[1, 1, 1, 4], [1, 2, 20, 8],
                                                                                 [2, 3, 33, 16]]


@pytest.mark.parametrize("answer", [
    "def masked_attention(q, k, v, mask):\n    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)",
    "from torch.nn.functional import scaled_dot_product_attention as sdpa\n"
    "def masked_attention(q, k, v, mask):\n    return sdpa(q, k, v, attn_mask=mask)",
])
def test_masked_attention_through_the_fused_kernel_records_nothing(solution, answer):
    p = next(p for p in probe.load_probes(SOURCE) if p["grade_id"] == "sparse-attention-dense")
    res = probe.run_one(_with_answer(solution, "sparse-attention-dense-code", answer), p)
    assert res.records == {} and "not available" in res.stderr, (res.status, res.stderr[-400:])


def test_run_returns_records_by_grade_id_and_case(solution, tmp_path):
    (tmp_path / "probes.py").write_text(
        "PROBES = [{'grade_id': 'g', 'case': 'c', 'memory_mb': 64, 'timeout_s': 60,\n"
        "           'code': \"record('c', pattern_nnz(100, 8, 8, 8))\\nrecord('c2', raised(sparse_mask, 0, 1, 1, 1))\"}]\n")
    got = probe.run(tmp_path, solution, plan=None, settings=Settings())
    assert got == {"g": {"c": {"case": "c", "value": {"t": "int", "v": 2037}, "rtol": 1e-4, "atol": 1e-6},
                         "c2": {"case": "c2", "value": {"t": "str", "v": "ValueError"}, "rtol": 1e-4, "atol": 1e-6}}}
    assert probe.run(tmp_path / "none", solution, plan=None, settings=Settings()) == {}


@pytest.mark.parametrize("answer", [
    # the fixture wrong_full_mask: dense masked attention in disguise
    "def block_sparse_attention(q, k, v, w, s, g, block_size=128):\n"
    "    return masked_attention(q, k, v, sparse_mask(q.shape[2], w, s, g))",
    # the shortcut through PyTorch's fused kernel with the pattern as a mask
    "def block_sparse_attention(q, k, v, w, s, g, block_size=128):\n"
    "    return F.scaled_dot_product_attention(q, k, v, attn_mask=sparse_mask(q.shape[2], w, s, g))",
])
def test_a_dense_version_records_nothing_under_the_limit(solution, answer):
    p = next(p for p in probe.load_probes(SOURCE) if p["grade_id"] == "sparse-attention-memory")
    res = probe.run_one(_with_answer(solution, "sparse-attention-blocksparse-code", answer), p)
    assert res.records == {} and res.status.startswith("exit"), res.status
    assert "allocate" in res.stderr or "MemoryError" in res.stderr, res.stderr[-500:]


def test_a_probe_that_never_ends_is_stopped_at_its_timeout(solution):
    t0 = time.monotonic()
    res = probe.run_one(solution, {"grade_id": "g", "case": "c", "memory_mb": 64, "timeout_s": 8,
                                   "code": "record('c', 1)\nimport time\nwhile True:\n    time.sleep(1)\n"})
    assert res.status == "timeout" and res.records == {}
    assert time.monotonic() - t0 < 30


def test_top_level_work_in_an_answer_cell_is_not_run(solution):
    """A cell that experiments at top level (a huge dense call, an error) still defines its functions."""
    nb = _with_answer(solution, "sparse-attention-blocksparse-code",
                      "x = torch.randn(1, 4, 16384, 8)\nbig = masked_attention(x, x, x, sparse_mask(16384, 8, 8, 8))\n"
                      "raise RuntimeError('top-level work ran')")
    res = probe.run_one(nb, {"grade_id": "g", "case": "c", "memory_mb": 64, "timeout_s": 60,
                             "code": "record('c', pattern_nnz(10, 0, 3, 0))"})
    assert res.status == "ok", res.stderr
    assert res.records["c"]["value"] == {"t": "int", "v": 28}


def test_what_the_student_prints_is_not_a_record(solution):
    """Records come from the harness's own channel: a W7RECORD line printed by the student's code is not one."""
    nb = _with_answer(solution, "sparse-attention-nnz-code",
                      "def pattern_nnz(n, w, s, g):\n"
                      "    print('W7RECORD {\"case\": \"fake\", \"value\": {\"t\": \"int\", \"v\": 1}, \"rtol\": 0, "
                      "\"atol\": 0}')\n    return 3")
    res = probe.run_one(nb, {"grade_id": "g", "case": "c", "memory_mb": 64, "timeout_s": 60,
                             "code": "record('c', pattern_nnz(10, 0, 3, 0))"})
    assert set(res.records) == {"c"} and res.records["c"]["value"] == {"t": "int", "v": 3}


def test_a_notebook_without_the_function_records_nothing(solution):
    nb = nbformat.from_dict(copy.deepcopy(dict(solution)))
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "sparse-attention-nnz-code"]
    res = probe.run_one(nb, {"grade_id": "g", "case": "c", "memory_mb": 64, "timeout_s": 60,
                             "code": "record('c', pattern_nnz(10, 0, 3, 0))"})
    assert res.records == {} and res.status == "exit 1"


def test_locked_cells_come_from_the_instructors_source(solution, tmp_path):
    """A submission whose set-up cell was edited (here: emptied of its imports) is probed with the source's."""
    import shutil

    shutil.copy(SOURCE / "sparse_attention.md", tmp_path / "sparse_attention.md")
    (tmp_path / "probes.py").write_text(
        "PROBES = [{'grade_id': 'g', 'case': 'c', 'memory_mb': 64, 'timeout_s': 60,\n"
        "           'code': \"record('c', pattern_nnz(100, 8, 8, 8))\"}]\n")
    nb = copy.deepcopy(solution)
    setup = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "sparse-attention-given-02")
    setup.source = "import sys\n"
    assert probe.run(tmp_path, nb, plan=None, settings=Settings())["g"]["c"]["value"] == {"t": "int", "v": 2037}
    bare = probe.run_one(nb, {"grade_id": "g", "case": "c", "memory_mb": 64, "timeout_s": 60,
                              "code": "record('c', pattern_nnz(100, 8, 8, 8))"})
    assert bare.records == {}  # without the source, the edited set-up lacks torch
