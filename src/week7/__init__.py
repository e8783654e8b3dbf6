"""Course library for Week 7, Advanced Transformers: the race to 1 trillion parameters.

The package holds the infrastructure that chapters and exercises share (model zoo, tasks, metrics, plotting,
launching ranks, timing). It never holds a graded answer: those live in the students' notebooks.
"""

from week7.seed import SEED, seed_everything

__all__ = ["SEED", "seed_everything", "__version__"]
__version__ = "0.1.0"
