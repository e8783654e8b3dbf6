"""Students: the assignment list (fetch, submit, feedback) and Validate, on the ngshare exchange."""
load_subconfig("/etc/jupyter/week7_common.py")  # noqa: F821 (given by traitlets)
