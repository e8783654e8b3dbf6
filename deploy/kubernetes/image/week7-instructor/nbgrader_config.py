"""Instructors: the students' settings plus the formgrader on the shared course workspace.

The workspace (W7_WORKSPACE, on the course volume) is nbgrader's course root for the formgrader and for
`python -m autograder` alike: the autograder writes <workspace>/nbgrader_config.py (course root, solutions/ as
source, exercises/ as release, the gradebook), and it is loaded here, so hand grades land in the same gradebook.
"""
import os

load_subconfig("/etc/jupyter/week7_common.py")  # noqa: F821 (given by traitlets)
_ws = os.environ.get("W7_WORKSPACE")
if _ws:
    load_subconfig(os.path.join(_ws, "nbgrader_config.py"))  # noqa: F821
