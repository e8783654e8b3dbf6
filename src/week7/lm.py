"""Generation and scoring for any causal language model (the course family or a hub model), on CPU or CUDA.

``generate`` is batched with left padding and a KV cache: prompts are sorted by length and cut into batches, the
prompt is run once, then one token per step reuses the cache. Position ids come from the attention mask, so a
left-padded prompt sees the same positions as the same prompt alone: greedy batched output equals unbatched output.
``score_choices`` sums the log-probabilities of candidate continuations (the way multiple-choice benchmarks are
scored). Both show a tqdm bar with ``progress=True``.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Iterator, Sequence

import numpy as np
import torch

__all__ = ["device", "generate", "score_choices", "encode", "free_cores", "auto_threads", "torch_threads"]


def device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def free_cores(sample_s: float = 0.2) -> float:
    """CPU cores idle right now: the idle share of all cores over ``sample_s`` seconds (Linux ``/proc/stat``).

    Returns the number of cores when it cannot tell (another system).
    """
    def snap() -> tuple[int, int]:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
        return sum(vals), vals[3] + (vals[4] if len(vals) > 4 else 0)  # total, idle + iowait

    n = os.cpu_count() or 1
    try:
        t0, i0 = snap()
        time.sleep(sample_s)
        t1, i1 = snap()
    except (OSError, ValueError, IndexError):
        return float(n)
    return n * (i1 - i0) / max(t1 - t0, 1)


def auto_threads(max_threads: int | None = None) -> int:
    """How many torch threads to use now: the cores that are idle, at least 1, at most ``max_threads``.

    On a shared 2-core machine two threads run 3-7x slower than one when another job holds a core (each thread
    waits for the other at every operation), while on an idle machine two are about twice as fast as one.
    """
    cap = max_threads or os.cpu_count() or 1
    now = time.monotonic()
    if now - _IDLE[0] > 10.0:  # one sample per 10 s: a sweep of many small evaluations pays it once
        _IDLE[:] = [now, free_cores(0.1)]
    return max(1, min(cap, int(_IDLE[1] + 0.5)))


_IDLE = [-1e9, 0.0]  # (when, idle cores) of the last sample


@contextlib.contextmanager
def torch_threads(n: int | None = None) -> Iterator[int]:
    """Run the block with ``n`` torch threads (``None``: ``auto_threads()``), then restore the previous count."""
    before = torch.get_num_threads()
    use = auto_threads() if n is None else max(1, int(n))
    torch.set_num_threads(use)
    try:
        yield use
    finally:
        torch.set_num_threads(before)


def _model_device(model) -> torch.device:
    return next(model.parameters()).device


def encode(tokenizer, texts: Sequence[str], add_special_tokens: bool = True) -> list[list[int]]:
    """Token ids of each text (with the tokenizer's own special tokens, e.g. ``<bos>`` for the family)."""
    return [tokenizer(t, add_special_tokens=add_special_tokens)["input_ids"] for t in texts]


def _pad_id(tokenizer) -> int:
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    if tokenizer.eos_token_id is not None:
        return tokenizer.eos_token_id
    return 0


def _left_pad(seqs: list[list[int]], pad_id: int, dev) -> tuple[torch.Tensor, torch.Tensor]:
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, T - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[i, T - len(s):] = 1
    return ids.to(dev), mask.to(dev)


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).clamp(min=0)


def _cache_kw(model) -> str:
    """transformers 5.x renamed the KV-cache argument ``past_key_values`` to ``cache``; use what the model takes."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _check_prompts(prompts) -> list[str]:
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings, got a single str: wrap it in a list")
    prompts = list(prompts)
    bad = [i for i, p in enumerate(prompts) if not isinstance(p, str)]
    if bad:
        raise TypeError(f"every prompt must be a str; prompt {bad[0]} is {type(prompts[bad[0]]).__name__}")
    return prompts


@torch.inference_mode()
def generate(model, tokenizer, prompts: list[str], max_new_tokens: int = 16, temperature: float = 0.0,
             top_k: int | None = None, seed: int | None = None, batch_size: int = 64, stop: str | None = "\n",
             progress: bool = False) -> list[str]:
    """Continue each prompt; returns the new text only, cut before ``stop`` (and at the end-of-text token).

    Args:
        prompts: list of B prompt strings.
        max_new_tokens: at most this many tokens are generated per prompt.
        temperature: 0 for greedy decoding; > 0 samples from softmax(logits / temperature).
        top_k: when sampling, keep only the k most likely tokens.
        seed: seeds the sampler (a torch.Generator), so sampled output is reproducible.
        batch_size: prompts per forward pass (sorted by length to limit padding).
        stop: a string that ends a generation (``None``: only ``max_new_tokens`` and end-of-text do).
    Returns:
        list of B strings, in the order of ``prompts``.
    """
    from tqdm.auto import tqdm

    prompts = _check_prompts(prompts)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be a positive int or None, got {top_k}")
    if batch_size < 1 or max_new_tokens < 0:
        raise ValueError(f"batch_size must be >= 1 and max_new_tokens >= 0, got {batch_size}, {max_new_tokens}")
    if not prompts:
        return []
    model.eval()
    dev = _model_device(model)
    cache_kw = _cache_kw(model)
    ids_all = encode(tokenizer, prompts)
    order = sorted(range(len(prompts)), key=lambda i: len(ids_all[i]))
    gen = None
    if temperature > 0:
        gen = torch.Generator(device=dev)
        gen.manual_seed(0 if seed is None else int(seed))
    eos = tokenizer.eos_token_id
    pad = _pad_id(tokenizer)
    out: list[str] = [""] * len(prompts)
    pieces: dict[int, str] = {}  # token id -> its text, to spot the stop string without decoding whole rows
    bar = tqdm(total=len(prompts), desc="generate", disable=not progress, leave=False)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        ids, mask = _left_pad([ids_all[i] for i in idx], pad, dev)
        B = ids.shape[0]
        new = torch.zeros((B, 0), dtype=torch.long, device=dev)
        done = torch.zeros(B, dtype=torch.bool, device=dev)
        texts = [""] * B
        past = None
        step_ids, step_pos = ids, _positions(mask)
        for _ in range(max_new_tokens):
            res = model(input_ids=step_ids, attention_mask=mask, position_ids=step_pos, use_cache=True,
                        **{cache_kw: past})
            past = getattr(res, cache_kw, None)
            logits = res.logits[:, -1, :].float()  # (B, V)
            if temperature == 0:
                nxt = logits.argmax(-1)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = torch.softmax(logits, -1)
                nxt = torch.multinomial(probs, 1, generator=gen).squeeze(-1)
            nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
            new = torch.cat([new, nxt[:, None]], dim=1)
            if eos is not None:
                done |= nxt == eos
            if stop is not None:
                for b, t in enumerate(nxt.tolist()):
                    if not done[b]:
                        if t not in pieces:
                            pieces[t] = tokenizer.decode([t], skip_special_tokens=True)
                        texts[b] += pieces[t]
                        if stop in texts[b][-(len(pieces[t]) + len(stop)):]:
                            done[b] = True
            if bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype, device=dev)], dim=1)
            step_ids, step_pos = nxt[:, None], (mask.sum(-1, keepdim=True) - 1)
        for b, i in enumerate(idx):
            row = new[b].tolist()
            if eos is not None and eos in row:
                row = row[: row.index(eos)]
            text = tokenizer.decode(row, skip_special_tokens=True)
            if stop is not None and stop in text:
                text = text[: text.index(stop)]
            out[i] = text
        bar.update(len(idx))
    bar.close()
    return out


@torch.inference_mode()
def score_choices(model, tokenizer, prompts: list[str], choices: list[list[str]], batch_size: int = 64,
                  progress: bool = False) -> np.ndarray:
    """Sum of log-probabilities of each choice given its prompt.

    Args:
        prompts: list of B prompts.
        choices: for each prompt, a list of candidate continuations (the same count C for every prompt, or ragged:
            missing entries are NaN).
    Returns:
        float64 array of shape (B, C): ``log p(choice | prompt)`` summed over the choice's tokens.
    """
    from tqdm.auto import tqdm

    prompts = _check_prompts(prompts)
    if len(choices) != len(prompts):
        raise ValueError(f"need one list of choices per prompt: {len(prompts)} prompts, {len(choices)} lists")
    model.eval()
    dev = _model_device(model)
    pairs = []  # (row, col, prompt ids, choice ids)
    for i, (p, cs) in enumerate(zip(prompts, choices)):
        if isinstance(cs, str):
            raise TypeError(f"choices[{i}] must be a list of strings, got a str")
        p_ids = encode(tokenizer, [p])[0]
        for j, c in enumerate(cs):
            c_ids = encode(tokenizer, [c], add_special_tokens=False)[0]
            if not c_ids:
                raise ValueError(f"choice {c!r} of prompt {i} encodes to no tokens")
            pairs.append((i, j, p_ids, c_ids))
    C = max((len(cs) for cs in choices), default=0)
    scores = np.full((len(prompts), C), np.nan)
    pad = _pad_id(tokenizer)
    for start in tqdm(range(0, len(pairs), batch_size), desc="score", disable=not progress, leave=False):
        chunk = pairs[start:start + batch_size]
        seqs = [p + c for _, _, p, c in chunk]
        ids, mask = _left_pad(seqs, pad, dev)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], -1)  # (B, T-1, V): predicts token t+1
        tgt = ids[:, 1:]
        tok_lp = logp.gather(-1, tgt[..., None]).squeeze(-1)  # (B, T-1)
        T = ids.shape[1]
        for b, (i, j, _, c) in enumerate(chunk):
            scores[i, j] = float(tok_lp[b, T - 1 - len(c):].sum())
    return scores
