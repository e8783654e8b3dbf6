"""The sandbox every submission's kernel runs in: bubblewrap (Debian package `bubblewrap`) plus rlimits.

What the kernel gets:
- a new mount namespace holding only: /usr (and the /bin, /lib symlinks), a few files of /etc (no secrets), the
  Python installation and the course virtual environment (read-only), the course package src/week7 (read-only),
  a private /tmp (a tmpfs of W7_WRITE_BYTES: the bound on everything the kernel writes), and its own working
  folder /tmp/work inside it, where a copy of the student's notebooks and the assignment's data files are bound
  read-only and new files can be written (thrown away after). Everything else is read-only. No solutions/, exercises/, workspace/ (gradebook, other submissions),
  hidden tests, home folders or /work.
- new network (only a loopback of its own: no network), pid (it sees only its own processes; all of them die with
  the sandbox), ipc and uts namespaces; `--die-with-parent`; `--new-session` (no terminal injection).
- an unprivileged user (uid 65534 unless W7_SANDBOX_UID says otherwise) with no capabilities and no_new_privs.
- an environment of a few fixed variables (no secrets from the grader's environment); among them
  TRITON_INTERPRET=1 when no CUDA device is visible inside (Triton kernels, exercise 06, then run in Triton's CPU
  interpreter) and TRITON_CACHE_DIR in the private /tmp (the kernel's home and the venv are read-only).
- rlimits: CPU seconds, address space, processes (per sandbox user), file size, open files; no core dumps.
- the kernel talks to the grader over unix sockets in a private folder (jupyter `ipc` transport), since it has
  no network.

What it needs: the `bwrap` binary (apt-get install -y bubblewrap; 0.8 tested), `setpriv` and `prlimit`
(util-linux), and either root (mounts made by root, then the kernel drops to the unprivileged uid) or unprivileged
user namespaces (kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0; then the kernel runs as the
grading user mapped to uid 65534 inside). In a container, the container must allow mount and user namespaces
(Docker's default seccomp profile blocks them: run with --security-opt seccomp=unconfined or a profile allowing
clone/unshare/mount). `check()` says which of these is missing.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from .settings import REPO, Settings


class SandboxUnavailable(RuntimeError):
    pass


SANDBOX_UID = int(os.environ.get("W7_SANDBOX_UID", "65534"))
SANDBOX_GID = int(os.environ.get("W7_SANDBOX_GID", "65534"))
INNER_HOME = "/home/student"
INNER_WORK = "/tmp/work"  # inside the one size-limited tmpfs (W7_WRITE_BYTES) that holds everything a kernel writes
ETC_FILES = ("ld.so.cache", "ld.so.conf", "nsswitch.conf", "localtime", "hosts", "passwd", "group", "mime.types",
             "ssl/openssl.cnf")


@dataclass(frozen=True)
class Plan:
    mode: str  # "bwrap-root" | "bwrap-userns" | "none"
    bwrap: str | None
    setpriv: str | None
    prlimit: str | None


def _python_roots() -> list[str]:
    """Folders the venv's Python needs: the venv itself and the base installation it points to."""
    roots = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            roots.add(str(Path(p).resolve().parents[1]) if "site-packages" in p else str(Path(p).resolve().parent))
    # site-packages folders added to sys.path by .pth files (a users' environment layered on another one, as on
    # the course hub) are needed too; only package folders, never the course repository (solutions/).
    for p in sys.path:
        rp = os.path.realpath(p) if p else ""
        if rp and os.path.isdir(rp) and os.path.basename(rp) == "site-packages":
            roots.add(rp)
    out = sorted({os.path.realpath(r) for r in roots if r and os.path.isdir(r)})
    # drop folders inside another listed folder
    return [r for r in out if not any(r != o and r.startswith(o + os.sep) for o in out)]


def _course_package_dirs() -> list[str]:
    """The course library's own folder (src/week7 of this checkout) only; never the rest of the repository."""
    pkg = REPO / "src" / "week7"
    return [str(pkg)] if pkg.is_dir() else []


def _course_package_parent() -> str:
    """The folder the kernel imports `week7` from: the parent of the bound package folder. Set as PYTHONPATH in
    the sandbox, so the kernel finds the package even when the environment's editable install points at another
    checkout (a second clone or a git worktree of the course) whose folder the sandbox does not bind."""
    return str(REPO / "src")


@functools.lru_cache(maxsize=4)
def check(mode: str = "auto") -> Plan:
    """Find a working sandbox; raise SandboxUnavailable with what to install or enable when there is none.

    mode: "auto" (bwrap, fail if it does not work), "bwrap", or "none" (no sandbox: only for instructors who accept
    running student code as themselves; every result is flagged "unsandboxed")."""
    if mode == "none":
        return Plan("none", None, None, None)
    if mode not in ("auto", "bwrap"):
        raise SandboxUnavailable(f"W7_SANDBOX={mode!r}: use auto, bwrap or none")
    bwrap, setpriv, prlimit = shutil.which("bwrap"), shutil.which("setpriv"), shutil.which("prlimit")
    missing = [n for n, p in (("bwrap (apt-get install -y bubblewrap)", bwrap),
                              ("setpriv (util-linux)", setpriv), ("prlimit (util-linux)", prlimit)) if not p]
    if missing:
        raise SandboxUnavailable("cannot sandbox student code: missing " + ", ".join(missing) +
                                 ". Install them, or set W7_SANDBOX=none to grade UNSANDBOXED at your own risk.")
    root = os.geteuid() == 0
    plan = Plan("bwrap-root" if root else "bwrap-userns", bwrap, setpriv, prlimit)
    probe = wrap_argv(plan, ["/bin/true"], work=Path("/"), kernel_dir=None, settings=Settings(), probe=True)
    try:
        r = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SandboxUnavailable(f"cannot sandbox student code: bwrap did not run ({e})") from None
    if r.returncode != 0:
        hint = ("as root, bwrap needs mount and network namespaces (in Docker: --security-opt seccomp=unconfined "
                "or --cap-add SYS_ADMIN)" if root else
                "without root, bwrap needs unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1,"
                " user.max_user_namespaces>0)")
        raise SandboxUnavailable(f"cannot sandbox student code: bwrap failed ({r.stderr.strip()[:300]}); {hint}. "
                                 "Set W7_SANDBOX=none to grade UNSANDBOXED at your own risk.")
    return plan


TRITON_CACHE = "/tmp/.triton"  # under the sandbox's private /tmp: writable, gone with the sandbox


def cuda_visible_in_sandbox() -> bool:
    """Whether a sandboxed kernel can see a CUDA device. wrap_argv mounts a minimal /dev (no /dev/nvidia*), so
    today it never can; a sandbox that binds the GPU's device files must make this return True."""
    return False


def kernel_env(settings: Settings, threads: int) -> dict[str, str]:
    venv_bin = os.path.join(sys.prefix, "bin")
    triton = {"TRITON_CACHE_DIR": TRITON_CACHE, "TRITON_HOME": TRITON_CACHE}
    if not cuda_visible_in_sandbox():
        triton["TRITON_INTERPRET"] = "1"  # Triton kernels (exercise 06) run in Triton's interpreter on the CPU
    return {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "USER": "student",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": "/tmp",
        "IPYTHONDIR": "/tmp/.ipython",
        "MPLCONFIGDIR": "/tmp/.mpl",
        "JUPYTER_RUNTIME_DIR": "/tmp/.jupyter",
        "PYTHONNOUSERSITE": "1",
        "PYTHONPATH": _course_package_parent(),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": "/tmp/.hf",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "NBGRADER_EXECUTION": "autograde",
        **triton,
    }


def wrap_argv(plan: Plan, cmd: list[str], *, work: Path, kernel_dir: Path | None, settings: Settings,
              threads: int = 1, probe: bool = False) -> list[str]:
    """The command line that runs `cmd` (a kernel) inside the sandbox."""
    if plan.mode == "none":
        return list(cmd)
    limits = [
        f"--cpu={settings.cpu_seconds}",
        f"--as={settings.memory_bytes}",
        f"--nproc={settings.max_processes}",
        f"--fsize={settings.file_bytes}",
        "--nofile=1024",
        "--core=0",
    ]
    argv = [plan.prlimit, *limits, "--", plan.bwrap]
    ns = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if plan.mode == "bwrap-userns":
        ns += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID)]
    argv += ns + ["--die-with-parent", "--new-session", "--clearenv"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        p = Path("/") / link
        if p.is_symlink():
            argv += ["--symlink", os.readlink(p), f"/{link}"]
        elif p.is_dir():
            argv += ["--ro-bind", str(p), f"/{link}"]
    for f in ETC_FILES:
        p = Path("/etc") / f
        if p.exists():
            argv += ["--ro-bind", str(p), str(p)]
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(settings.write_bytes), "--tmpfs",
             "/tmp", "--tmpfs", "/home", "--tmpfs", "/root", "--tmpfs", "/run"]
    if not probe:
        binds = _python_roots() + _course_package_dirs()
        made: set[str] = {"/", "/tmp", "/home", "/root", "/run", "/usr"}
        for target in binds + ([str(kernel_dir)] if kernel_dir is not None else []):
            for anc in reversed(Path(target).parents):  # bwrap would create them 0700: unreadable after setpriv
                a = str(anc)
                if a not in made:
                    made.add(a)
                    argv += ["--perms", "0755", "--dir", a]
        for r in binds:
            argv += ["--ro-bind", r, r]
        argv += work_folder_argv(work)
        if kernel_dir is not None:
            argv += ["--bind", str(kernel_dir), str(kernel_dir)]
        for k, v in kernel_env(settings, threads).items():
            argv += ["--setenv", k, v]
        argv += ["--chdir", INNER_WORK]
    else:
        argv += ["--chdir", "/"]
    argv += READ_ONLY_MOUNTS
    argv += ["--"]
    if plan.mode == "bwrap-root":
        argv += [plan.setpriv, f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_GID}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return argv + list(cmd)


# Everything but the size-limited /tmp (and the kernel's socket folder until seal_kernel_dir) is read-only: the
# sandbox's root and the empty tmpfs under /home, /root, /run (writable by the sandbox user in user-namespace mode).
READ_ONLY_MOUNTS = ["--remount-ro", "/", "--remount-ro", "/home", "--remount-ro", "/root", "--remount-ro", "/run"]


def work_folder_argv(work: Path) -> list[str]:
    """The kernel's working folder INNER_WORK, in the size-limited /tmp (W7_WRITE_BYTES for all it writes): a
    folder the kernel may write new files into, with each file of `work` (the student's notebooks, the data
    files) bound read-only at its place. Nothing the kernel writes there reaches the host's disk."""
    argv = ["--perms", "0777", "--dir", INNER_WORK]
    for p in sorted(work.rglob("*")):
        dest = f"{INNER_WORK}/{p.relative_to(work).as_posix()}"
        if p.is_symlink():
            continue
        if p.is_dir():
            argv += ["--perms", "0777", "--dir", dest]
        elif p.is_file():
            argv += ["--ro-bind", str(p), dest]
    return argv


def seal_kernel_dir(plan: Plan | None, kernel_dir: Path) -> None:
    """Once the kernel has bound its sockets (it answered kernel_info), take its socket folder back: as root it
    becomes root's, so the kernel cannot write files into it (the one host folder it could write to). Without
    root (user namespaces) the kernel runs as the folder's owner and could undo this: not done there."""
    if plan is None or plan.mode != "bwrap-root":
        return
    for p in [kernel_dir, *kernel_dir.iterdir()]:
        if p.is_file() and not p.is_symlink():  # the connection file; the sockets stay the kernel's
            os.chown(p, 0, 0)
            os.chmod(p, 0o644)
    os.chown(kernel_dir, 0, 0)
    os.chmod(kernel_dir, 0o711)


def prepare_dirs(plan: Plan, *dirs: Path) -> None:
    """Make folders usable by the sandbox user (as root: hand them to it; otherwise they are ours already)."""
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        if plan.mode == "bwrap-root":
            for p in [d, *d.rglob("*")]:
                os.chown(p, SANDBOX_UID, SANDBOX_GID, follow_symlinks=False)
        os.chmod(d, 0o700)


def reap_orphans() -> list[int]:
    """Kill sandboxed kernels left behind by a grading run that was itself killed (kill -9 of the CLI).

    bubblewrap's --die-with-parent normally takes a kernel down with its worker, but a sandbox whose parent is
    already gone (re-parented to init) is an orphan by definition: no live grading run owns it. Only processes
    whose command line names a w7k- kernel folder and whose parent is pid 1 are killed (their whole sandbox dies
    with them). Returns the pids killed. Called at the start of every autograde run.
    """
    killed = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ")
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == 1 and b"/w7k-" in cmdline and (b"bwrap" in cmdline or b"ipykernel" in cmdline):
            try:
                os.kill(int(d.name), 9)
                killed.append(int(d.name))
            except OSError:
                pass
    return killed
