"""nbgrader settings every user of the course hub on Kubernetes shares (loaded by each role's nbgrader_config.py).

The exchange is ngshare (a hub service), since a shared exchange folder cannot be protected by unix permissions
when every user runs as the same uid in a pod of their own. Validate runs the whole notebook: its cell time limit
is the autograder's (120 s unless W7_CELL_TIMEOUT says otherwise), not nbgrader's 30 s, which a
laptop-sized pod passes on the exercises' slowest cells only barely.
"""
import os

c = get_config()  # noqa: F821 (given by traitlets when it loads this file)
c.CourseDirectory.course_id = os.environ.get("W7_COURSE_ID", "week7-advanced-transformers")
# Validate's cell limit is the autograder's (W7_CELL_TIMEOUT, default 120 s, autograder/settings.py): a cell that
# Validate lets run must not be cut short at grading, nor the other way round
c.Execute.timeout = int(os.environ.get("W7_CELL_TIMEOUT", "120"))
c.Execute.iopub_timeout = 60
_url = os.environ.get("W7_NGSHARE_URL")
if _url:
    from ngshare_exchange import configureExchange

    configureExchange(c, _url)
