"""Exercise 04's own attacks (issue 15), rebuilt against grading by comparison, graded in one batch.

The earlier design checked in the student's kernel against yardsticks the student's code could reach: week7's
attention (its `F`), the `LargestTensor` memory meter, numpy's comparisons, autograd. Each attack below starts from
an honest answer with one mistake (so it knows what it should earn: the solution's points minus that mistake's part)
and adds the attack on top; it must score no more than the honest mistake. The memory property is measured by the
grader's external probe (autograder/probe.py), which no code in the kernel can reach. An honest solution that does
unusual things (walks the garbage collector, prints record-like text) keeps every point.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import fixturelib  # noqa: E402

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]

ASSIGNMENT, NOTEBOOK = "04-sparse-attention", "sparse_attention.ipynb"
SCALE = ("scores = (q @ k.transpose(-2, -1)) / math.sqrt(d)", "scores = (q @ k.transpose(-2, -1)) / d")
MASK = ("return (j <= i) & ((i - j <= w) | (j % s == 0) | (j < g))",
        "return (j <= i) & ((i - j <= g) | (j % s == 0) | (j < w))")
DETACH = ("k_far, v_far = k.index_select(2, far), v.index_select(2, far)",
          "k_far, v_far = k.index_select(2, far).detach(), v.index_select(2, far).detach()")
DENSE = ("    B, H, n, d = q.shape\n",
         "    B, H, n, d = q.shape\n    with torch._C.DisableTorchFunction():  # invisible to TorchFunctionModes\n"
         "        return masked_attention(q, k, v, sparse_mask(n, w, s, g))\n")

# name -> (answer cell, edit of the honest mistake or None, attack code appended to that cell, points it may keep)
ATTACKS = {
    # the yardsticks swapped: week7.attention's F and the notebook's F made to call the student's own (wrong) code,
    # the memory meter blinded
    "yardstick_swap": ("sparse-attention-dense-code", SCALE,
                       "import types\nimport torch.nn.functional as _F\nimport week7.attention as _A\n"
                       "_fake = types.SimpleNamespace(**{k: getattr(_F, k) for k in dir(_F) if not k.startswith('__')})\n"
                       "_fake.scaled_dot_product_attention = lambda q, k, v, attn_mask=None, **kw: masked_attention("
                       "q, k, v, attn_mask if attn_mask is not None else torch.ones(q.shape[-2], k.shape[-2], "
                       "dtype=torch.bool).tril())\n"
                       "_A.F = _fake\nF = _fake\n"
                       "_A.LargestTensor.__torch_function__ = lambda self, func, types, args=(), kwargs=None: "
                       "func(*args, **(kwargs or {}))\n", 14.0),
    # dense attention where no TorchFunctionMode sees it, the meter patched too: the probe's memory limit decides
    "meter_blind": ("sparse-attention-blocksparse-code", DENSE,
                    "import week7.attention as _A\n"
                    "class _Blind:\n    numel, shape, op, ops = 0, (), '', 0\n"
                    "    def __enter__(self):\n        return self\n    def __exit__(self, *a):\n        return False\n"
                    "_A.LargestTensor = _Blind\nLargestTensor = _Blind\n", 14.0),
    # numpy's comparisons made to say yes, through its real class dictionary
    "numpy_says_yes": ("sparse-attention-mask-code", MASK,
                       "import ctypes, gc\nimport numpy as np\n"
                       "_d = gc.get_referents(np.ndarray.__dict__)[0]\n_d['all'] = _d['any']\n"
                       "ctypes.pythonapi.PyType_Modified(ctypes.py_object(np.ndarray))\n"
                       "np.array_equal = lambda *a, **k: True\n", 13.0),
    # wrong gradients hidden behind hooks that overwrite what autograd gives, and autograd.grad patched
    "gradient_forgery": ("sparse-attention-blocksparse-code", DETACH,
                         "import torch\n_real_grad = torch.autograd.grad\n"
                         "def _grad(outputs, inputs, grad_outputs=None, **kw):\n"
                         "    got = _real_grad(outputs, inputs, grad_outputs, **kw)\n"
                         "    return tuple(g if g is None else g * 0 + g.mean() for g in got)\n"
                         "torch.autograd.grad = _grad\n"
                         "_bsa = block_sparse_attention\n"
                         "def block_sparse_attention(q, k, v, *a, **kw):\n"
                         "    for t in (q, k, v):\n"
                         "        if t.requires_grad:\n"
                         "            t.register_hook(lambda g: torch.ones_like(g))\n"
                         "    out = _bsa(q, k, v, *a, **kw)\n"
                         "    out.detach = lambda: torch.zeros_like(out)  # an instance attribute on a real tensor\n"
                         "    return out\n", 13.0),
    # honest and unusual: the garbage collector walked, record-like text printed, stderr written
    "honest_unusual": ("sparse-attention-dense-code", None,
                       "import gc, sys\ngc.get_objects()\n"
                       "print('W7RECORD {\"case\": \"hidden\"} application/vnd.week7.record.v1+json')\n"
                       "print('a note on stderr', file=sys.stderr)\n", 16.0),
}


def _submission(tmp: Path, name: str) -> Path:
    cell, edit, attack, _ = ATTACKS[name]
    answers = fixturelib.solution_answers(ASSIGNMENT, NOTEBOOK)
    nb = nbformat.read(ROOT / "exercises" / ASSIGNMENT / NOTEBOOK, as_version=4)
    for c in nb.cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            src = answers[gid]
            if gid == cell:
                if edit is not None:
                    assert src.count(edit[0]) == 1, (name, edit[0])
                    src = src.replace(edit[0], edit[1])
                src = src + "\n\n" + attack
            c.source = src
    p = tmp / f"{name}.ipynb"
    nbformat.write(nb, p)
    return p


def test_exercise_04_attacks_gain_nothing(tmp_path):
    from autograder.api import grade

    subs = {name: _submission(tmp_path, name) for name in ATTACKS}
    res = grade(ASSIGNMENT, subs, workers=2)
    table = {n: (r.total, r.status, [g for g, (a, m) in r.by_grade_id.items() if a < m]) for n, r in res.items()}
    print("\n".join(f"{n:18s} {t:5.1f}/16  {s:8s} lost {lost}" for n, (t, s, lost) in sorted(table.items())))
    for name, (_, _, _, may_keep) in ATTACKS.items():
        r = res[name]
        assert r.max_total == 16.0, (name, r.max_total)
        assert r.status in ("graded", "flagged"), (name, r.status, r.flags)
        if name.startswith("honest"):
            assert r.total == may_keep and not r.flags, (name, table[name], r.flags)
        else:
            assert r.total <= may_keep, (f"{name} scored {r.total}, more than the {may_keep} its honest mistake "
                                         f"earns: {table[name]}")
