"""tools/build_book.py: which lines of a build log fail the build."""

from tools.build_book import failures


def test_sphinx_warnings_and_errors_fail_the_build_other_logs_do_not():
    """Check that Sphinx's warnings and errors are caught, and a kernel's own log lines are not."""
    log = "\n".join([
        "ERROR:tornado.general:Uncaught exception in ZMQStream callback",  # a kernel's shutdown race
        "[IPKernelApp] WARNING | Kernel is running over TCP without encryption.",
        "/b/chapters/01-overview.md:95: WARNING: could not find bibtex key \"x\"",
        "/b/chapters/04-emergence.md: ERROR: Execution Failed with traceback saved in /b/reports/x.err.log",
        "reading sources... [ 50%] chapters/05-scaling-laws",
    ])
    assert failures(log) == ['/b/chapters/01-overview.md:95: WARNING: could not find bibtex key "x"',
                             "/b/chapters/04-emergence.md: ERROR: Execution Failed with traceback saved in "
                             "/b/reports/x.err.log"]
