"""Attention infrastructure for the sparse-attention chapter and exercise: never an exercise's answer.

What is here:
- ``reference_attention``: dense attention through ``torch.nn.functional.scaled_dot_product_attention``, causal
  or not, the yardstick of the chapters (no mask: attention under a mask is exercise 04's ``masked_attention``).
- ``LargestTensor``: a ``TorchFunctionMode`` that records the largest tensor any operation creates, so that a test
  can check how much memory an algorithm allocates without timing anything.
- ``pattern_figure``: an attention mask as a heatmap in the course style.
- ``flex_block_mask`` and ``flex_masked_attention``: FlexAttention (``torch.nn.attention.flex_attention``) on a
  mask given as a dense boolean tensor, with an optional permutation of the keys, for comparisons.

The pattern (which keys a query sees) and the block-sparse algorithm are what students write in
``exercises/04-sparse-attention``: they are deliberately not in this module.

References: Child et al. (2019) for strided sparse attention, Dong et al. (2024) for FlexAttention.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

__all__ = ["reference_attention", "LargestTensor", "pattern_figure", "flex_block_mask",
           "flex_masked_attention", "check_qkv"]


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[int, int, int, int]:
    """Check that q, k, v are tensors of one shape (B, H, n, d), dtype and device; return (B, H, n, d).

    Raises:
        TypeError: an argument is not a torch.Tensor.
        ValueError: the shapes, dtypes or devices differ, or the tensors are not 4-dimensional.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (B, H, n, d), got {type(t).__name__}")
    if q.dim() != 4:
        raise ValueError(f"q, k, v must have shape (B, H, n, d); q has shape {tuple(q.shape)}")
    if not (q.shape == k.shape == v.shape):
        raise ValueError(f"q, k, v must have the same shape, got {tuple(q.shape)}, {tuple(k.shape)}, "
                         f"{tuple(v.shape)}")
    if not (q.dtype == k.dtype == v.dtype) or not (q.device == k.device == v.device):
        raise ValueError("q, k, v must share one dtype and one device: convert them with .to(...) first")
    return tuple(q.shape)  # type: ignore[return-value]


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, is_causal: bool = False) -> torch.Tensor:
    """Dense softmax(q k^T / sqrt(d)) v with PyTorch's fused kernel, causal or not; the yardstick the chapters use.

    It takes no mask on purpose: attention under an arbitrary boolean mask is what students write in exercise 04
    (``masked_attention``), so the course package does not offer it.

    Args:
        q, k, v: (B, H, n, d) tensors of one dtype and device.
        is_causal: query i attends to keys 0 .. i only.

    Returns:
        (B, H, n, d) tensor, the dtype of q.
    """
    check_qkv(q, k, v)
    if not isinstance(is_causal, bool):
        raise TypeError(f"is_causal must be True or False, got {type(is_causal).__name__} (this function takes no "
                        "mask: attention under a mask is exercise 04's masked_attention)")
    return F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)


def _outputs(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _outputs(o)]
    return []


class LargestTensor(TorchFunctionMode):
    """Record the largest tensor (in elements) that any torch function or tensor method returns in the block.

    Views (slices, transposes, reshapes of existing storage) count too, with the elements they show; inputs that
    exist before the block do not. It sees the calls that Python code makes (``torch.*``, ``F.*``, tensor methods
    and operators), not the kernels' private buffers nor the autograd engine's backward pass. Use it as a context
    manager::

        with LargestTensor() as big:
            out = f(q, k, v)
        big.numel, big.shape, big.op     # elements, shape and the call that made it
        big.ops                          # how many torch calls ran (a Python loop makes it grow with n)

    A ``TorchFunctionMode`` rather than a dispatch mode on purpose: entering the first dispatch mode imports
    ``torch._dynamo`` (seconds, and it patches library classes while it loads, which the autograder's integrity
    guard reports as tampering when it happens inside a graded notebook).
    """

    def __init__(self) -> None:
        super().__init__()
        self.numel = 0
        self.shape: tuple[int, ...] = ()
        self.op = ""
        self.ops = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops += 1
        for t in _outputs(out):
            if t.numel() > self.numel:
                self.numel, self.shape, self.op = t.numel(), tuple(t.shape), getattr(func, "__name__", str(func))
        return out


def pattern_figure(mask: torch.Tensor, title: str = "attention pattern", height: int = 420):
    """A (n, n) boolean mask as a heatmap (query down, key across); returns a plotly figure."""
    from week7 import viz

    if not isinstance(mask, torch.Tensor) or mask.dim() != 2:
        raise ValueError("pattern_figure needs a 2-D tensor (the mask of one head); got "
                         f"{type(mask).__name__} {getattr(mask, 'shape', '')}")
    return viz.heatmap(mask.detach().to("cpu", torch.float32).numpy(), title=title, height=height)


def flex_block_mask(mask: torch.Tensor, key_order: torch.Tensor | None = None, block_size: int = 128):
    """A FlexAttention ``BlockMask`` for a dense boolean mask, its keys optionally permuted.

    Args:
        mask: (n, n) boolean tensor, True where query i may attend to key j.
        key_order: optional (n,) permutation of the keys; key slot t of the permuted problem is key
            ``key_order[t]`` of the original one. Putting the keys that many queries share (strided, global) in
            front makes the blocks the pattern touches far fewer.
        block_size: FlexAttention's tile size (128 by default).

    Returns:
        a ``torch.nn.attention.flex_attention.BlockMask`` for (n queries, n keys), on the mask's device.
    """
    from torch.nn.attention.flex_attention import create_block_mask

    if mask.dtype != torch.bool or mask.dim() != 2 or mask.shape[0] != mask.shape[1]:
        raise ValueError(f"mask must be a square boolean tensor, got {mask.dtype} {tuple(mask.shape)}")
    n = mask.shape[0]
    permuted = mask if key_order is None else mask[:, key_order]

    def mask_mod(b, h, q_idx, kv_idx):
        return permuted[q_idx, kv_idx]

    return create_block_mask(mask_mod, None, None, n, n, device=mask.device, BLOCK_SIZE=block_size)


_COMPILED: dict[str, Callable] = {}


def flex_masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_mask,
                          key_order: torch.Tensor | None = None, compiled: bool = True) -> torch.Tensor:
    """FlexAttention of q over k, v with a ``BlockMask`` from ``flex_block_mask`` (same ``key_order``).

    ``compiled=True`` runs ``torch.compile(flex_attention)`` (the first call compiles: 15-30 s on a CPU, it needs
    a C compiler and the Python headers); eager FlexAttention builds the whole score matrix and is slower than
    dense attention.
    """
    from torch.nn.attention.flex_attention import flex_attention

    check_qkv(q, k, v)
    if key_order is not None:
        k, v = k.index_select(2, key_order), v.index_select(2, key_order)
    if not compiled:
        return flex_attention(q, k, v, block_mask=block_mask)
    if "flex" not in _COMPILED:
        _COMPILED["flex"] = torch.compile(flex_attention, dynamic=False)
    return _COMPILED["flex"](q, k, v, block_mask=block_mask)
