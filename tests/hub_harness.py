"""Start and stop a real JupyterHub for the course on 127.0.0.1, with test users, for the end-to-end test.

Everything it starts is stopped at the end, also on failure: the hub and the proxy run in their own process
group, and every process of the test users is killed. It needs root (to create unix users and to let the
hub spawn servers as them), Debian's python3.11 (the users' environment must live outside /root), npm
(configurable-http-proxy) and chromium.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from autograder.source import materialise_all

ROOT = Path(__file__).resolve().parents[1]
HUB_DIR = ROOT / "deploy" / "jupyterhub"
CHP = HUB_DIR / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
INSTRUCTOR = "w7-instructor"
STUDENTS = ("w7-student1", "w7-student2")
PASSWORD = "week7-e2e-only"  # DummyAuthenticator, loopback only, test users only


class HubSetupError(RuntimeError):
    """Something the hub needs is missing; the message says what to install."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], user: str | None = None, cwd: Path | None = None, check: bool = True, env=None,
        timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a command, as `user` when given (runuser, login environment with HOME set)."""
    if user is not None:
        home = pwd.getpwnam(user).pw_dir
        cmd = ["runuser", "-u", user, "--", "env", f"HOME={home}", f"USER={user}",
               "PATH=/usr/local/bin:/usr/bin:/bin", "HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1",
               *[f"{k}={v}" for k, v in (env or {}).items()], *cmd]
        env = None
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def ensure_prerequisites() -> None:
    if os.geteuid() != 0:
        raise HubSetupError("the hub end-to-end test must run as root: it creates unix users and spawns their "
                            "servers (run `make test` as root, or in a container)")
    for tool, how in (("runuser", "apt-get install -y util-linux"), ("useradd", "apt-get install -y passwd"),
                      ("npm", "apt-get install -y nodejs npm")):
        if shutil.which(tool) is None:
            raise HubSetupError(f"{tool} is missing: {how}")
    if not CHP.exists():
        r = subprocess.run(["npm", "ci" if (CHP.parents[2] / "package-lock.json").exists() else "install",
                            "--no-audit", "--no-fund", "--ignore-scripts"], cwd=HUB_DIR / "proxy",
                           capture_output=True, text=True)
        if r.returncode != 0 or not CHP.exists():
            raise HubSetupError(f"could not install configurable-http-proxy with npm:\n{r.stderr[-2000:]}")


def ensure_users() -> None:
    """Create the test users, each with a fresh home (nothing left from an earlier run)."""
    kill_user_processes()
    for user in (INSTRUCTOR, *STUDENTS):
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            run(["useradd", "--create-home", "--shell", "/bin/bash", user])
            pw = pwd.getpwnam(user)
        home = Path(pw.pw_dir)
        if home.exists():
            shutil.rmtree(home)
        shutil.copytree("/etc/skel", home, symlinks=True)
        for p in [home, *home.rglob("*")]:
            os.lchown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(home, 0o700)


def kill_user_processes() -> None:
    for user in (INSTRUCTOR, *STUDENTS):
        subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)


@dataclass
class Hub:
    """A running hub: its URL, folders and the users' environment."""

    base: Path
    url: str = ""
    env_bin: Path = field(init=False)
    exchange: Path = field(init=False)
    course_root: Path = field(init=False)
    state: Path = field(init=False)
    log: Path = field(init=False)
    proc: subprocess.Popen | None = None

    def __post_init__(self):
        self.env_bin = self.base / "env" / "bin"
        self.exchange = self.base / "exchange"
        self.state = self.base / "state"
        self.log = self.base / "hub.log"
        self.course_root = Path(pwd.getpwnam(INSTRUCTOR).pw_dir) / "week7-course"

    # -- set-up ------------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        ensure_prerequisites()
        ensure_users()
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)
        env_dir = Path(os.environ.get("W7_HUB_USER_ENV", self.base / "env"))
        self.env_bin = env_dir / "bin"
        r = subprocess.run(["bash", str(HUB_DIR / "make_user_env.sh"), str(env_dir), "--share", str(ROOT / ".venv")],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise HubSetupError(f"make_user_env.sh failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
        self.state.mkdir(exist_ok=True)
        os.chmod(self.state, 0o700)
        if self.exchange.exists():
            shutil.rmtree(self.exchange)
        self.exchange.mkdir()
        os.chmod(self.exchange, 0o777)  # nbgrader: every user writes into the exchange; it sets sub-folder modes
        self.make_course_root()

    def make_course_root(self) -> None:
        """The instructor's course directory: the repository's solutions, exercises and autograder, private."""
        if self.course_root.exists():
            shutil.rmtree(self.course_root)
        self.course_root.mkdir(parents=True)
        materialise_all(ROOT / "solutions")  # nbgrader (formgrader, command line) reads notebooks, made from the .md
        for part in ("solutions", "exercises", "autograder"):
            if (ROOT / part).exists():
                shutil.copytree(ROOT / part, self.course_root / part,
                                ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        (self.course_root / "workspace").mkdir()  # gradebook, submitted/, autograded/, feedback/: private
        uid, gid = pwd.getpwnam(INSTRUCTOR).pw_uid, pwd.getpwnam(INSTRUCTOR).pw_gid
        for p in [self.course_root, *self.course_root.rglob("*")]:
            os.chown(p, uid, gid)
        os.chmod(self.course_root, 0o700)
        # the same nbgrader settings the hub writes at spawn, for the instructor's command-line steps
        home = Path(pwd.getpwnam(INSTRUCTOR).pw_dir)
        cfg = home / ".jupyter" / "nbgrader_config.py"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text("c = get_config()\n"
                       f"c.Exchange.root = {str(self.exchange)!r}\n"
                       "c.CourseDirectory.course_id = 'week7-advanced-transformers'\n"
                       f"c.CourseDirectory.root = {str(self.course_root)!r}\n"
                       "c.CourseDirectory.source_directory = 'solutions'\n"
                       "c.CourseDirectory.ignore = ['.ipynb_checkpoints', '*.pyc', '__pycache__', 'feedback', '.*', "
                       "'*.md']\n"
                       "c.CourseDirectory.release_directory = 'exercises'\n")
        for p in (cfg.parent, cfg):
            os.chown(p, uid, gid)

    # -- start / stop ------------------------------------------------------------------------------------------
    def start(self, timeout: float = 120) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, W7_HUB_PORT=str(port), W7_HUB_API_PORT=str(free_port()),
                   W7_PROXY_API_PORT=str(free_port()), W7_STATE_DIR=str(self.state),
                   W7_EXCHANGE=str(self.exchange), W7_AUTH="dummy", W7_DUMMY_PASSWORD=PASSWORD,
                   W7_INSTRUCTORS=INSTRUCTOR, W7_STUDENTS=",".join(STUDENTS), W7_PYTHON_BIN=str(self.env_bin),
                   W7_COURSE_ROOT=str(self.course_root), W7_CHP=str(CHP))
        self.proc = subprocess.Popen([str(self.env_bin / "python"), "-m", "jupyterhub", "-f",
                                      str(HUB_DIR / "jupyterhub_config.py")], cwd=self.state, env=env,
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(Exception):
                if urllib.request.urlopen(self.url + "/hub/health", timeout=2).status == 200:
                    return
            time.sleep(1)
        raise RuntimeError(f"the hub did not answer within {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        kill_user_processes()
        # the proxy runs in the hub's process group; a leftover one (hub killed hard) is found by its pid file
        pid_file = self.state / "proxy.pid"
        if pid_file.exists():
            with contextlib.suppress(Exception):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)

    def leftovers(self) -> list[str]:
        """Processes still running that this hub started (should be none after stop())."""
        r = subprocess.run(["ps", "-eo", "pid,user,args"], capture_output=True, text=True)
        mine = [ln for ln in r.stdout.splitlines()[1:]
                if any(u in ln.split(None, 2)[1] for u in (INSTRUCTOR, *STUDENTS))
                or str(self.state) in ln or (self.url and self.url.rsplit(":", 1)[-1] in ln and "proxy" in ln)]
        return mine

    def as_instructor(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        # the instructor's workspace (gradebook, submissions) is private; the exchange is the hub's
        env = {"W7_EXCHANGE": str(self.exchange), "W7_WORKSPACE": str(self.course_root / "workspace"),
               "W7_COURSE_ID": "week7-advanced-transformers"}
        return run([str(self.env_bin / "python"), *args], user=INSTRUCTOR, cwd=self.course_root, check=check,
                   env=env, timeout=timeout)


def nb_json(path: Path) -> dict:
    return json.loads(path.read_text())
