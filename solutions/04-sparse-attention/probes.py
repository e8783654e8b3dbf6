"""Exercise 04's external probes (instructor-only: never released, not copied into the sandbox's working folder).

autograder/probe.py runs each probe's code after the student's definitions (imports, functions, constants; no
top-level experiments) in a fresh sandboxed python process, on one thread, with an address-space limit of the
baseline after the set-up imports (597 MB for python + torch + numpy + plotly + week7 on the course machine) plus
`memory_mb`. A probe that crashes, runs out of memory or time records nothing, and its test cell then fails.

sparse-attention-memory: block_sparse_attention at n = 16384 (B = 1, H = 4, d = 8; w = 8, s = 32, g = 8,
block_size = 512), without gradients, 256 MB above the baseline. Measured on the course machine (2 shared cores):
the solution peaks 111-118 MB above the baseline, 4-11 s for the whole process (sandbox, imports, 0.75 s of
compute). Dense attention under the pattern fails (its mask alone is 16384^2 index differences; the scores are
4 x 16384^2 float32 = 4 GiB: "tried to allocate 268435456 bytes"), and so does a loop over query blocks that
scores every key (block x n scores per block, 704 MB: "tried to allocate 134217728 bytes"). The records are
the output's shape, dtype and finiteness: what any block-sparse attention returns, right or wrong in its values
(those are graded by the output and gradient cells), so that a wrong pattern loses those parts and not this one
too. The process must finish under the limit to record them at all.

sparse-attention-dense: masked_attention with PyTorch's fused attention taken away (F.scaled_dot_product_attention,
torch._C._nn.scaled_dot_product_attention and FlexAttention raise), before the student's code is read: Task 2 asks
for matrix products and softmax, and the fused kernel returns the same values. Its values on three cases join the
cell's records, so a masked_attention that calls the fused kernel (or week7's helpers, which call it) loses
the cell's 2 points.
"""

_TAKE_AWAY = '''
import torch
import torch.nn.functional as _F
import torch.nn.attention.flex_attention as _fa


def _not_here(*args, **kwargs):
    raise RuntimeError("scaled_dot_product_attention and flex_attention are not available to masked_attention")


_F.scaled_dot_product_attention = _not_here
torch._C._nn.scaled_dot_product_attention = _not_here
_fa.flex_attention = _not_here
'''

PROBES = [
    {
        "grade_id": "sparse-attention-memory",
        "case": "probe n=16384 rows",
        "memory_mb": 256,
        "timeout_s": 120,
        "code": '''
gen = torch.Generator().manual_seed(40)
B, H, n, d = 1, 4, 16384, 8
q, k, v = (torch.randn(B, H, n, d, generator=gen) for _ in range(3))
out = block_sparse_attention(q, k, v, 8, 32, 8, block_size=512)
# what any block-sparse attention returns, right or wrong in its values (those are graded by the output and
# gradient cells): finishing under the limit is the property
record("probe n=16384 rows", [list(out.shape), str(out.dtype), bool(torch.isfinite(out).all())])
''',
    },
    {
        "grade_id": "sparse-attention-dense",
        "case": "probe no fused kernel (2, 3, 33, 16)",
        "memory_mb": 1024,
        "timeout_s": 120,
        "before": _TAKE_AWAY,
        "code": '''
gen = torch.Generator().manual_seed(44)
for (B, H, n, d), dtype, case in (((2, 3, 33, 16), torch.float32, "probe no fused kernel (2, 3, 33, 16)"),
                                  ((1, 2, 20, 8), torch.float64, "probe no fused kernel (1, 2, 20, 8) float64"),
                                  ((1, 1, 1, 4), torch.float32, "probe no fused kernel n=1")):
    q, k, v = (torch.randn(B, H, n, d, generator=gen, dtype=dtype) for _ in range(3))
    mask = (torch.rand(n, n, generator=gen) < 0.3) | torch.eye(n, dtype=torch.bool)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-8, atol=1e-10)
    record(case, masked_attention(q, k, v, mask), **tol)
''',
    },
]
