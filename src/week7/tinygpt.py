"""A tiny GPT in pure torch, the model the parallelism exercise splits (infrastructure, not an answer).

Notable:
- No dropout and a fixed seeded init, so a split model can be compared with the unsplit one number for number.
- Attention has separate ``q``, ``k``, ``v`` projections (``Linear(C, C)`` each, heads laid out as contiguous
  blocks of ``d_head`` output features), so splitting by heads is a slice of rows: the layout Megatron-LM uses
  after its fused QKV is reordered per head.
- The MLP is ``fc: Linear(C, 4C) -> GELU -> proj: Linear(4C, C)``, the pair a column-parallel and a row-parallel
  layer split with one all-reduce.
- ``GPT.blocks`` is an ``nn.ModuleList``, so layer and pipeline parallelism can hand out contiguous slices of it.

References: nanoGPT's model.py (Karpathy), Megatron-LM (Shoeybi et al., 2019).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["GPTConfig", "GPT", "Block", "Attention", "MLP", "causal_attention"]


@dataclass(frozen=True)
class GPTConfig:
    """Size of the tiny GPT."""

    vocab_size: int = 64   # tokens in the vocabulary
    block_size: int = 32   # longest sequence (positions)
    n_layer: int = 4       # transformer blocks
    n_head: int = 4        # attention heads per block
    d_model: int = 32      # width C (n_head * d_head)
    seed: int = 0          # init seed: same seed, same weights

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "d_model"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"GPTConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} must be a multiple of n_head={self.n_head}")


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal scaled dot-product attention. q, k, v: (B, nh, T, hs) -> (B, nh, T, hs)."""
    T = q.shape[-2]
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B, nh, T, T)
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril_()
    att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    return att @ v  # (B, nh, T, hs)


class Attention(nn.Module):
    """Multi-head causal self-attention with separate q, k, v projections and an output projection."""

    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.n_head, self.d_head = n_head, d_model // n_head
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (f(x).view(B, T, self.n_head, self.d_head).transpose(1, 2) for f in (self.q, self.k, self.v))
        y = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.proj(y)


class MLP(nn.Module):
    """Linear(C, 4C) -> GELU -> Linear(4C, C)."""

    def __init__(self, d_model: int):
        super().__init__()
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.proj = nn.Linear(4 * d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln1(x)), then x + mlp(ln2(x))."""

    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(d_model), Attention(d_model, n_head)
        self.ln2, self.mlp = nn.LayerNorm(d_model), MLP(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Token + position embedding, ``n_layer`` blocks, final LayerNorm, linear head to logits."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        g = torch.Generator().manual_seed(config.seed)
        with torch.random.fork_rng(devices=[]):  # the default inits below draw from the global RNG: restore it
            self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
            self.pos_emb = nn.Embedding(config.block_size, config.d_model)
            self.blocks = nn.ModuleList(Block(config.d_model, config.n_head) for _ in range(config.n_layer))
            self.ln_f = nn.LayerNorm(config.d_model)
            self.head = nn.Linear(config.d_model, config.vocab_size)
        with torch.no_grad():  # deterministic init that does not touch the global RNG
            for name, p in self.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
                elif p.dim() == 1:  # LayerNorm weight
                    p.fill_(1.0)
                else:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.02)

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T) int64 -> embeddings (B, T, C)."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.config.block_size}")
        pos = torch.arange(T, device=idx.device)
        return self.tok_emb(idx) + self.pos_emb(pos)  # (B, T, C)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T) int64 -> logits (B, T, vocab_size)."""
        x = self.embed(idx)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    @staticmethod
    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over every position. logits (B, T, V), targets (B, T) -> scalar."""
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def random_batch(config: GPTConfig, batch_size: int, seq_len: int | None = None, seed: int = 0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """A reproducible batch of random token ids and next-token targets, each (B, T) int64."""
    T = seq_len or config.block_size
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(0, config.vocab_size, (batch_size, T + 1), generator=g)
    return data[:, :-1].contiguous(), data[:, 1:].contiguous()
