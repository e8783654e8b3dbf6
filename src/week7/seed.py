"""One place where seeds are set, so that every number printed in the book is reproducible."""

from __future__ import annotations

import os
import random

SEED = 7  # the course seed: chapters and exercises call seed_everything() with it unless they say otherwise


def seed_everything(seed: int = SEED, deterministic: bool = False) -> int:
    """Seed Python, numpy and torch (CPU and CUDA). Returns the seed so it can be printed beside results.

    ``deterministic=True`` also asks torch for deterministic kernels (slower; errors on ops that have none).
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    import torch

    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)
    return seed
