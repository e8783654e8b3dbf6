"""The course autograder: nbgrader's model and workflow, with a sandbox, integrity checks and a parallel,
resumable pipeline. `python -m autograder --help` for the command line; `autograder.api` for tests."""

from .api import Result, check_assignment, generate, grade

__all__ = ["Result", "check_assignment", "generate", "grade"]
