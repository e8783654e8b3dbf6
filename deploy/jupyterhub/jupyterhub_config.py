"""JupyterHub configuration for one course: Week 7, Advanced Transformers.

Local-process spawner (every user is a unix account), JupyterLab with nbgrader's assignment list and validate
button for students, the formgrader for instructors (roles by group), one nbgrader exchange folder.

Everything site-specific comes from environment variables, so the same file serves a production server and the
end-to-end test (tests/test_hub_e2e.py):

  W7_HUB_IP, W7_HUB_PORT   where the hub listens (default 127.0.0.1:8000; put TLS in front in production)
  W7_HUB_API_PORT, W7_PROXY_API_PORT   internal ports (default 8081 and 8001)
  W7_STATE_DIR             hub database, cookie secret, proxy token (default /srv/week7-hub)
  W7_EXCHANGE              nbgrader exchange root (default /srv/nbgrader/exchange)
  W7_COURSE_ID             nbgrader course id (default week7-advanced-transformers, as the autograder)
  W7_COURSE_ROOT           the instructors' clone of this repository (solutions/, exercises/), e.g. /home/prof/week7
  W7_WORKSPACE             the instructor workspace: gradebook.db, submitted/, autograded/, feedback/, exports/
                           (default <W7_COURSE_ROOT>/workspace, the autograder's own default). The formgrader and
                           `python -m autograder` in the instructors' terminals both use it: one gradebook
  W7_CELL_TIMEOUT          seconds a notebook cell may run in Validate (default: the autograder's, 120 s)
  W7_INSTRUCTORS           comma-separated unix user names with the formgrader
  W7_STUDENTS              comma-separated unix user names (leave empty to let any authenticated user in
                           with the student role when W7_OPEN_ENROLMENT=1)
  W7_AUTH                  "pam" (default: unix passwords) or "dummy" (tests only: one shared password,
                           W7_DUMMY_PASSWORD); production should use an OAuth/LTI authenticator, see README.md
  W7_PYTHON_BIN            the folder of the course environment's executables (default: this Python's)
  W7_CHP                   path of configurable-http-proxy (default: deploy/jupyterhub/proxy/node_modules/.bin/...)
"""

from __future__ import annotations

import json
import os
import pwd
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

HERE = Path(__file__).resolve().parent
sys.path.append(str(HERE.parents[1]))  # the repository: the autograder's settings are the course's one source
from autograder.settings import Settings  # noqa: E402

env = os.environ.get
STATE = Path(env("W7_STATE_DIR", "/srv/week7-hub"))
EXCHANGE = env("W7_EXCHANGE", "/srv/nbgrader/exchange")
COURSE_ID = env("W7_COURSE_ID", "week7-advanced-transformers")
COURSE_ROOT = env("W7_COURSE_ROOT", "")
WORKSPACE = env("W7_WORKSPACE", "") or (str(Path(COURSE_ROOT) / "workspace") if COURSE_ROOT else "")
BIN = Path(env("W7_PYTHON_BIN", str(Path(sys.executable).parent)))
INSTRUCTORS = {u for u in env("W7_INSTRUCTORS", "").split(",") if u}
STUDENTS = {u for u in env("W7_STUDENTS", "").split(",") if u}

# --- network and state -------------------------------------------------------------------------------------
c.JupyterHub.ip = env("W7_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(env("W7_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env("W7_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{int(env('W7_PROXY_API_PORT', '8001'))}"
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.command = [env("W7_CHP", str(HERE / "proxy/node_modules/.bin/configurable-http-proxy"))]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")
c.JupyterHub.cleanup_servers = True

# --- who may log in, and as what -----------------------------------------------------------------------------
if env("W7_AUTH", "pam") == "dummy":
    # Tests only: every listed user logs in with the one password. Never use in production.
    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = env("W7_DUMMY_PASSWORD", "")
else:
    c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = INSTRUCTORS | STUDENTS
c.Authenticator.admin_users = set()  # instructors need no hub admin rights to grade
c.JupyterHub.load_groups = {"instructors": {"users": sorted(INSTRUCTORS)},
                            "students": {"users": sorted(STUDENTS)}}

# --- the single-user servers -----------------------------------------------------------------------------------
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(BIN / "python"), "-m", "jupyterhub.singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.http_timeout = 60
c.Spawner.start_timeout = 90
c.Spawner.environment = {
    "HF_HUB_OFFLINE": "1",          # the course ships its models; nothing is fetched at run time
    "TRANSFORMERS_OFFLINE": "1",
    "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
}

STUDENT_DISABLED_LAB = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                        "@jupyter/nbgrader:course-list"]


def _write(path: Path, text: str, uid: int, gid: int, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    for parent in path.parents:
        if parent == Path(pwd.getpwuid(uid).pw_dir):
            break
        os.chown(parent, uid, gid)


def course_settings() -> Settings:
    """The autograder's settings for the hub's course clone and workspace (the CLI's defaults otherwise)."""
    s = Settings()
    if COURSE_ROOT:
        s.course_root = Path(COURSE_ROOT)
    if WORKSPACE:
        s.workspace = Path(WORKSPACE)
    return s


def nbgrader_config(is_instructor: bool) -> str:
    """The text of a user's ~/.jupyter/nbgrader_config.py.

    Everyone: the exchange, the course id and the execution limits of Validate, the autograder's own (a cell
    that Validate lets run would otherwise be cut short by the grader, or the other way round). Instructors also
    get the course directory of the formgrader: the autograder's workspace as nbgrader's root, the clone's
    solutions/ and exercises/ as source and release, and the workspace's gradebook, exactly what
    `python -m autograder` uses, so hand scores entered in the formgrader reach `export`.
    """
    s = course_settings()
    lines = ["c = get_config()", f"c.Exchange.root = {EXCHANGE!r}", f"c.CourseDirectory.course_id = {COURSE_ID!r}",
             # nbclient's default of 4 s for a cell's first output is too short on a busy server (importing
             # torch), and nbgrader's 30 s per cell too short for the course's slowest cells
             "c.Execute.iopub_timeout = 60", f"c.Execute.timeout = {int(s.cell_timeout_s)}"]
    if is_instructor and WORKSPACE:
        lines += [f"c.CourseDirectory.root = {str(s.workspace)!r}",
                  f"c.CourseDirectory.source_directory = {str(s.solutions)!r}",
                  f"c.CourseDirectory.release_directory = {str(s.exercises)!r}",
                  f"c.CourseDirectory.db_url = {'sqlite:///' + str(s.db_path)!r}",
                  # solutions/*/*.md are the MyST sources of the notebooks: never copied into a release
                  f"c.CourseDirectory.ignore = {list(s.ignore)!r}"]
        # the formgrader's own Generate Feedback would show students the hidden tests and mark schemes
        from autograder.workspace import FEEDBACK_GUARD
        return "\n".join(lines) + "\n" + FEEDBACK_GUARD
    return "\n".join(lines) + "\n"


def instructor_env() -> dict[str, str]:
    """What an instructor's server (and so their JupyterLab terminals) gets, so that `python -m autograder ...`
    typed there works on the formgrader's workspace and the hub's exchange."""
    return {"W7_WORKSPACE": WORKSPACE, "W7_EXCHANGE": EXCHANGE, "W7_COURSE_ID": COURSE_ID} if WORKSPACE else {}


def provision(spawner) -> None:
    """Before each server starts: write the user's nbgrader and JupyterLab settings for their role.

    Students see the assignment list and the validate button, and neither the formgrader nor the assignment
    editor (their lab extensions and the formgrader server extension are off). Instructors get the formgrader,
    on the course's workspace.
    """
    name = spawner.user.name
    pw = pwd.getpwnam(name)  # LocalProcessSpawner needs a unix account of the same name
    home = Path(pw.pw_dir)
    is_instructor = name in INSTRUCTORS
    if is_instructor:
        spawner.environment = {**spawner.environment, **instructor_env()}
        if WORKSPACE and not Path(WORKSPACE).resolve().is_relative_to(home.resolve()):
            # nbgrader's formgrader serves only a course directory under the server's root (the home)
            spawner.log.error("W7_WORKSPACE=%s is not inside %s's home %s: the formgrader will answer 500 "
                              "(nbgrader needs the course directory under the notebook root)", WORKSPACE, name, home)
    _write(home / ".jupyter" / "nbgrader_config.py", nbgrader_config(is_instructor), pw.pw_uid, pw.pw_gid)
    disabled = {} if is_instructor else {ext: True for ext in STUDENT_DISABLED_LAB}
    _write(home / ".jupyter" / "labconfig" / "page_config.json", json.dumps({"disabledExtensions": disabled}),
           pw.pw_uid, pw.pw_gid)
    server = {"ServerApp": {"jpserver_extensions": {"nbgrader.server_extensions.formgrader": is_instructor,
                                                    "nbgrader.server_extensions.course_list": is_instructor}}}
    if is_instructor:
        # JupyterLab shows the formgrader in an iframe of the instructor's own server; JupyterHub's default
        # `frame-ancestors 'none'` blanks it ("refused to connect"). Students keep the default.
        server["ServerApp"]["tornado_settings"] = {"headers": {"Content-Security-Policy": "frame-ancestors 'self'"}}
    _write(home / ".jupyter" / "jupyter_server_config.json", json.dumps(server), pw.pw_uid, pw.pw_gid)
    os.chmod(home, 0o700)  # no student can read another's home (their fetched and submitted work)


c.Spawner.pre_spawn_hook = provision
