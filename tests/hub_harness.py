"""Start and stop a real JupyterHub for the course on 127.0.0.1, with test users, for the end-to-end test.

It needs nothing left from an earlier run: `Hub.prepare()` creates the unix users (removing any an interrupted run
left), the users' environment, the exchange and the instructor's course clone; `Hub.remove()` stops everything it
started (the hub and the proxy run in their own process group, every process of the test users is killed) and
deletes what it created, the users and their homes included, so the next run starts from the same clean machine.
It needs root (to create unix users and to let the
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
import sys
import time
import urllib.request
from dataclasses import dataclass
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


def course_venv() -> Path:
    """The course environment running this test (a second clone or worktree may use another's .venv)."""
    return Path(sys.prefix) if sys.prefix != sys.base_prefix else ROOT / ".venv"


def ensure_prerequisites() -> None:
    if os.geteuid() != 0:
        raise HubSetupError("the hub end-to-end test must run as root: it creates unix users and spawns their "
                            "servers (run `make test` as root, or in a container)")
    for tool, how in (("runuser", "apt-get install -y util-linux"), ("useradd", "apt-get install -y passwd"),
                      ("userdel", "apt-get install -y passwd"), ("pgrep", "apt-get install -y procps"),
                      ("npm", "apt-get install -y nodejs npm")):
        if shutil.which(tool) is None:
            raise HubSetupError(f"{tool} is missing: {how}")
    if not CHP.exists():
        r = subprocess.run(["npm", "ci" if (CHP.parents[2] / "package-lock.json").exists() else "install",
                            "--no-audit", "--no-fund", "--ignore-scripts"], cwd=HUB_DIR / "proxy",
                           capture_output=True, text=True)
        if r.returncode != 0 or not CHP.exists():
            raise HubSetupError(f"could not install configurable-http-proxy with npm:\n{r.stderr[-2000:]}")


TEST_USERS = (INSTRUCTOR, *STUDENTS)


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def remove_users() -> list[str]:
    """Delete the test users with everything they own: processes, homes (`userdel --remove`, which also drops
    their user groups and mail spools) and files they left in the machine's temporary folders.

    Returns:
        the names that existed and were removed.
    """
    kill_user_processes()
    removed = []
    for user in TEST_USERS:
        try:
            uid = pwd.getpwnam(user).pw_uid
        except KeyError:
            continue
        for tmp in (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")):
            for p in tmp.iterdir() if tmp.is_dir() else []:
                with contextlib.suppress(OSError):
                    if p.lstat().st_uid == uid:
                        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        r = run(["userdel", "--remove", user], check=False)
        if user_exists(user):
            raise RuntimeError(f"userdel --remove {user} failed ({r.returncode}): {r.stderr.strip()}")
        removed.append(user)
    return removed


def ensure_users() -> None:
    """Create the test users from nothing (any left by an interrupted run are removed first), each with a new
    private home."""
    remove_users()
    for user in TEST_USERS:
        run(["useradd", "--create-home", "--shell", "/bin/bash", user])
        os.chmod(pwd.getpwnam(user).pw_dir, 0o700)


def kill_user_processes(wait: float = 15) -> None:
    """Kill every process of the test users and wait until they are gone (userdel refuses a busy user)."""
    users = [u for u in TEST_USERS if user_exists(u)]
    for user in users:
        subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)
    deadline = time.time() + wait
    while users and time.time() < deadline:
        users = [u for u in users if subprocess.run(["pgrep", "-u", u], capture_output=True).returncode == 0]
        time.sleep(0.2)


LOCK_FILE = Path("/run/lock/week7-hub-e2e.lock") if Path("/run/lock").is_dir() else Path("/tmp/week7-hub-e2e.lock")


def machine_lock(wait_s: float = 3600):
    """An exclusive flock on LOCK_FILE, held until the returned file is closed; says once that it waits."""
    import fcntl

    f = LOCK_FILE.open("a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return f
    except BlockingIOError:
        print(f"hub test: another hub test holds {LOCK_FILE}; waiting for it (up to {wait_s:.0f} s)", flush=True)
    deadline = time.time() + wait_s
    while time.time() < deadline:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            time.sleep(2)
    f.close()
    raise HubSetupError(f"another hub test held {LOCK_FILE} for {wait_s:.0f} s (a stuck run? `fuser {LOCK_FILE}`)")


@dataclass
class Hub:
    """A hub of its own: its URL, folders and the users' environment, all under `base` or in the test users'
    homes, so that removing `base` and the users (`remove()`) leaves the machine as it was."""

    base: Path
    url: str = ""
    proc: subprocess.Popen | None = None

    def __post_init__(self):
        self.env_bin = Path(os.environ.get("W7_HUB_USER_ENV", self.base / "env")) / "bin"
        self.exchange = self.base / "exchange"
        self.state = self.base / "state"
        self.log = self.base / "hub.log"

    # the instructor's folders live in their home, which exists only once prepare() has created the users
    @property
    def instructor_home(self) -> Path:
        try:
            return Path(pwd.getpwnam(INSTRUCTOR).pw_dir)
        except KeyError:
            raise RuntimeError(f"the test user {INSTRUCTOR} does not exist yet: call Hub.prepare() first") from None

    @property
    def course_root(self) -> Path:
        """The instructor's clone of the course: solutions/, exercises/, autograder/."""
        return self.instructor_home / "week7-course"

    @property
    def workspace(self) -> Path:
        """The instructor workspace (gradebook, submitted/, autograded/, feedback/, exports/): the ONE setting
        (W7_WORKSPACE) that both the hub's formgrader and the instructor's `python -m autograder` commands get."""
        return self.course_root / "workspace"

    # -- set-up ------------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Create everything the hub needs: the unix users, the users' environment, the exchange, the hub's
        state folder and the instructor's course clone. Waits for any other hub test on this machine first (the
        test users' names are fixed: two runs at once, from two clones, would delete each other's users)."""
        self._lock = machine_lock()
        ensure_prerequisites()
        ensure_users()
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)
        env_dir = self.env_bin.parent
        r = subprocess.run(["bash", str(HUB_DIR / "make_user_env.sh"), str(env_dir), "--share", str(course_venv())],
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
        """The instructor's course directory: the repository's solutions, exercises and autograder, private.
        Its workspace is created by the autograder's first command, as on a real hub."""
        self.course_root.mkdir(parents=True)
        materialise_all(ROOT / "solutions")  # nbgrader (formgrader, command line) reads notebooks, made from the .md
        for part in ("solutions", "exercises", "autograder"):
            if (ROOT / part).exists():
                shutil.copytree(ROOT / part, self.course_root / part,
                                ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        pw = pwd.getpwnam(INSTRUCTOR)
        for p in [self.course_root, *self.course_root.rglob("*")]:
            os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(self.course_root, 0o700)

    def remove(self) -> list[str]:
        """Stop the hub, delete the test users (homes included) and `base`; return the users removed. Releases the
        machine lock."""
        self.stop()
        try:
            removed = remove_users()
            shutil.rmtree(self.base, ignore_errors=True)
        finally:
            lock = getattr(self, "_lock", None)
            if lock is not None:
                lock.close()  # closing the file releases the flock
                self._lock = None
        return removed

    # -- start / stop ------------------------------------------------------------------------------------------
    def start(self, timeout: float = 120) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, W7_HUB_PORT=str(port), W7_HUB_API_PORT=str(free_port()),
                   W7_PROXY_API_PORT=str(free_port()), W7_STATE_DIR=str(self.state),
                   W7_EXCHANGE=str(self.exchange), W7_AUTH="dummy", W7_DUMMY_PASSWORD=PASSWORD,
                   W7_INSTRUCTORS=INSTRUCTOR, W7_STUDENTS=",".join(STUDENTS), W7_PYTHON_BIN=str(self.env_bin),
                   W7_COURSE_ROOT=str(self.course_root), W7_WORKSPACE=str(self.workspace), W7_CHP=str(CHP))
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
        # what the hub puts in the instructor's server environment, so a terminal in their JupyterLab runs the
        # same commands on the same workspace (see instructor_env in jupyterhub_config.py)
        env = {"W7_EXCHANGE": str(self.exchange), "W7_WORKSPACE": str(self.workspace),
               "W7_COURSE_ID": "week7-advanced-transformers"}
        return run([str(self.env_bin / "python"), *args], user=INSTRUCTOR, cwd=self.course_root, check=check,
                   env=env, timeout=timeout)


def nb_json(path: Path) -> dict:
    return json.loads(path.read_text())
