"""Metrics used by the model family's evidence: exact match, partial-credit metrics, bootstrap intervals.

Exact match is discontinuous: one wrong digit scores 0. The partial-credit metrics beside it (per-digit,
per-character and per-word accuracy, counted position by position) rise smoothly when a model improves smoothly;
Schaeffer et al. (2023, "Are emergent abilities of large language models a mirage?") show that many "emergent" jumps
are the choice of metric. This module is course infrastructure, not an exercise answer: it holds no edit
(Levenshtein) distance and no edit similarity, which exercise 01 asks students to write (its tests check that
nothing in `week7` computes them).
"""

from __future__ import annotations

import numpy as np

__all__ = ["exact_match", "digit_accuracy", "word_accuracy", "char_accuracy", "bootstrap_ci"]


def _check_str(**kwargs) -> None:
    for k, v in kwargs.items():
        if not isinstance(v, str):
            raise TypeError(f"{k} must be a str, got {type(v).__name__}")


def exact_match(prediction: str, answer: str) -> bool:
    """True when the prediction equals the answer after stripping surrounding whitespace."""
    _check_str(prediction=prediction, answer=answer)
    return prediction.strip() == answer.strip()


def digit_accuracy(prediction: str, answer: str) -> float:
    """Fraction of digit positions right, aligned from the right, over the longer of the two strings.

    ``digit_accuracy("612", "612") == 1``, ``("602", "612") == 2/3``, ``("12", "612") == 2/3``, ``("", "612") == 0``.
    """
    _check_str(prediction=prediction, answer=answer)
    p, a = prediction.strip(), answer.strip()
    n = max(len(p), len(a))
    if n == 0:
        return 1.0
    p, a = p.rjust(n, "\0"), a.rjust(n, "\0")
    return sum(x == y and x != "\0" for x, y in zip(p, a)) / n


def word_accuracy(prediction: str, answer: str) -> float:
    """Fraction of word positions right (split on whitespace), over the longer of the two word lists."""
    _check_str(prediction=prediction, answer=answer)
    p, a = prediction.split(), answer.split()
    n = max(len(p), len(a))
    if n == 0:
        return 1.0
    return sum(x == y for x, y in zip(p, a)) / n


def char_accuracy(prediction: str, answer: str) -> float:
    """Fraction of character positions right, aligned from the left, over the longer of the two stripped strings.

    The text twin of `digit_accuracy` (which aligns from the right, as digits of a number do):
    ``char_accuracy("positiv", "positive") == 7/8``, ``("negative", "positive") == 4/8``, ``("7", "7") == 1``,
    ``("x7", "7") == 0``, ``("", "") == 1``. A position-wise count, not an edit distance: one missing character at
    the start shifts every position after it (``("ositive", "positive") == 0``).
    """
    _check_str(prediction=prediction, answer=answer)
    p, a = prediction.strip(), answer.strip()
    n = max(len(p), len(a))
    if n == 0:
        return 1.0
    return sum(x == y for x, y in zip(p, a)) / n


def bootstrap_ci(values, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile bootstrap interval: ``(mean, low, high)`` at level ``1 - alpha``.

    The resamples come from a stream of their own, ``SeedSequence(seed, spawn_key=(1,))``, not from
    ``np.random.default_rng(seed)``: exercise 03 asks students to write a paired bootstrap with exactly that draw
    (``paired_bootstrap``), and this function must not answer it (``bootstrap_ci(b - a)`` gives another interval).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one value, got an empty sequence")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    means = x[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(x.mean()), float(lo), float(hi)
