"""week7.tinygpt: the tiny GPT the parallelism exercise splits (shapes, seeded init, causality, bad config)."""

from __future__ import annotations

import pytest
import torch

from week7.tinygpt import GPT, GPTConfig, random_batch


def test_shapes_and_loss():
    cfg = GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, d_model=8)
    idx, tgt = random_batch(cfg, 3)
    assert idx.shape == tgt.shape == (3, 8) and idx.dtype == torch.int64
    assert torch.equal(idx[:, 1:], tgt[:, :-1])  # targets are the next tokens
    logits = GPT(cfg)(idx)
    assert logits.shape == (3, 8, 20)
    loss = GPT.loss(logits, tgt)
    assert abs(loss.item() - torch.log(torch.tensor(20.0)).item()) < 0.2  # near-uniform at init


def test_same_seed_same_weights_and_global_rng_untouched():
    cfg = GPTConfig(seed=3)
    state = torch.random.get_rng_state()
    a, b, c = GPT(cfg), GPT(cfg), GPT(GPTConfig(seed=4))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.blocks[0].mlp.fc.weight, c.blocks[0].mlp.fc.weight)


def test_causal():
    cfg = GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, d_model=8)
    model = GPT(cfg)
    idx, _ = random_batch(cfg, 1)
    changed = idx.clone()
    changed[0, 5] = (changed[0, 5] + 1) % 20
    a, b = model(idx), model(changed)
    assert torch.allclose(a[:, :5], b[:, :5]) and not torch.allclose(a[:, 5:], b[:, 5:])


def test_bad_config_and_input():
    with pytest.raises(ValueError, match="multiple of n_head"):
        GPTConfig(n_head=3, d_model=32)
    with pytest.raises(ValueError, match="n_layer"):
        GPTConfig(n_layer=0)
    cfg = GPTConfig(block_size=4)
    with pytest.raises(ValueError, match="block_size"):
        GPT(cfg)(torch.zeros(1, 5, dtype=torch.long))
