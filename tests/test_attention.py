"""week7.attention: the dense reference, the tensor-size probe, the pattern figure and the FlexAttention helper."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from week7.attention import LargestTensor, check_qkv, flex_block_mask, flex_masked_attention, pattern_figure, \
    reference_attention


def _qkv(B=2, H=3, n=17, d=8, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, n, d, generator=gen, dtype=dtype) for _ in range(3)]


def _naive(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), -1) @ v


def test_reference_attention_matches_the_formula_causal_and_not():
    q, k, v = _qkv()
    n = q.shape[2]
    assert np.allclose(reference_attention(q, k, v).numpy(),
                       _naive(q, k, v, torch.ones(n, n, dtype=torch.bool)).numpy(), atol=1e-12)
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    assert np.allclose(reference_attention(q, k, v, is_causal=True).numpy(), _naive(q, k, v, causal).numpy(),
                       atol=1e-12)
    full = reference_attention(q, k, v)
    assert not np.allclose(full.numpy(), _naive(q, k, v, causal).numpy())


def test_reference_attention_takes_no_mask():
    """Attention under an arbitrary mask is exercise 04's masked_attention: the package does not offer it."""
    q, k, v = _qkv()
    with pytest.raises(TypeError):
        reference_attention(q, k, v, mask=torch.ones(17, 17, dtype=torch.bool))
    with pytest.raises(TypeError, match="takes no mask"):
        reference_attention(q, k, v, torch.ones(17, 17, dtype=torch.bool))


@pytest.mark.parametrize("bad, message", [
    (lambda q, k, v: reference_attention(q, k[..., :-1], v), "same shape"),
    (lambda q, k, v: reference_attention(q[0], k[0], v[0]), "(B, H, n, d)"),
    (lambda q, k, v: reference_attention(q, k.float(), v), "one dtype"),
])
def test_reference_attention_rejects_bad_input_with_a_clear_message(bad, message):
    q, k, v = _qkv()
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        bad(q, k, v)
    with pytest.raises(TypeError, match="torch.Tensor"):
        check_qkv(q.numpy(), k, v)


def test_largest_tensor_sees_the_biggest_intermediate_and_counts_operations():
    x = torch.randn(64, 8)
    with LargestTensor() as big:
        y = (x @ x.T).softmax(-1)  # (64, 64) intermediate
        z = y.sum()
    assert big.numel == 64 * 64 and big.shape == (64, 64) and "matmul" in big.op
    assert float(z) == pytest.approx(64.0, rel=1e-5)

    def looped(n):
        out = torch.zeros(n)
        for i in range(n):
            out[i] = i
        return out

    with LargestTensor() as a:
        looped(8)
    with LargestTensor() as b:
        looped(64)
    assert b.ops > a.ops + 50  # a Python loop over positions shows up as more tensor operations
    with LargestTensor() as c:
        torch.arange(64)[:, None] <= torch.arange(64)[None, :]
    assert c.ops < 10 and c.numel == 64 * 64


def test_largest_tensor_imports_nothing_lazily():
    """Entering the mode must not import torch._dynamo (a dispatch mode would): graded notebooks use it."""
    import subprocess
    import sys

    code = ("import sys, torch\nfrom week7.attention import LargestTensor\nwith LargestTensor() as big:\n"
            "    torch.ones(3, 4).sum()\nassert big.numel == 12, big.numel\n"
            "assert 'torch._dynamo' not in sys.modules, 'LargestTensor imported torch._dynamo'\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def test_pattern_figure_is_a_heatmap_of_the_mask():
    mask = torch.ones(10, 10, dtype=torch.bool).tril()
    fig = pattern_figure(mask, title="causal")
    z = np.asarray(fig.data[0].z)
    assert fig.data[0].type == "heatmap" and z.shape == (10, 10) and z.sum() == 55
    with pytest.raises(ValueError, match="2-D"):
        pattern_figure(torch.ones(2, 3, 3, dtype=torch.bool))


def test_flex_helper_matches_the_reference_with_and_without_a_key_permutation():
    q, k, v = _qkv(B=1, H=2, n=256, d=16, dtype=torch.float32)
    n = 256
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    mask = (j <= i) & ((i - j <= 3) | (j % 32 == 0))  # a test pattern (not the exercise's)
    want = _naive(q, k, v, mask).numpy()
    order = torch.cat([torch.arange(0, n, 32), torch.tensor([t for t in range(n) if t % 32])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager FlexAttention warns that it is not compiled
        for key_order in (None, order):
            bm = flex_block_mask(mask, key_order=key_order)
            got = flex_masked_attention(q, k, v, bm, key_order=key_order, compiled=False).numpy()
            assert np.abs(got - want).max() < 1e-5
    with pytest.raises(ValueError, match="square boolean"):
        flex_block_mask(torch.ones(4, 5, dtype=torch.bool))
