"""The executor nbgrader's autograde runs submissions with.

`GuardedExecute` is nbgrader's Execute preprocessor plus:
- the kernel starts inside the sandbox (sandbox.py) with a working folder holding only the student's files;
- nothing of the grader runs in the kernel: test cells only record their results as plain data, and
  compare.CompareRecords judges them afterwards in the grader's process (the in-kernel guard is gone, issue 15);
- test cells run with the records of week7.checks kept under a budget of their own (max_record_bytes);
- a whole-notebook wall-clock limit; a kernel that ignores an interrupt is killed after a grace period; a kernel
  that dies (memory, CPU time, os._exit) fails the remaining cells instead of the whole batch; test cells that
  never ran get an error (nbgrader would otherwise give full marks to a test cell with no output);
- a cap on the output bytes kept per cell.

`StderrCounts` keeps stderr text of test cells as ordinary output, so a correct answer that prints a warning
keeps its points (nbgrader gives 0 to a test cell that wrote anything to stderr).

Infrastructure failures (CONTEXT["infra"], reasons): the grade of such a submission would say nothing about its
answers, so pipeline.grade_one marks it "failed" instead of "graded". They are: the kernel does not start or
nbclient stops outside a cell; the kernel dies or hangs in instructor code
before any student code ran; an instructor code cell (locked, not graded: set-up, given helpers, demos) raises an
error that does not come from the student's code. Instructor cells are restored from the release by nbgrader, so
an error there comes either from the environment (a missing package, week7 not importable, a missing data file)
or from the student's earlier answers; it is the student's when its traceback passes through a cell the student
wrote, or when the cell uses a name the student's cells bind (or must bind: a name no instructor cell defines).
Otherwise it is the environment: always for ImportError, ModuleNotFoundError and FileNotFoundError, and for any
error before the first student cell ran.

Per-submission context (work folder, sandbox plan) is passed through the module-level CONTEXT, set by the
worker process before it calls nbgrader (one submission at a time per process).
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import os
import re
import shutil
import tempfile
import time
import typing as t
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from traitlets import Integer

from nbgrader import utils
from nbgrader.preprocessors import Execute, NbGraderPreprocessor

from . import sandbox
from .compare import MIME as RECORD_MIME

TRUNCATED = "\n[autograder: output truncated at {n} bytes]\n"
CONTEXT: dict[str, t.Any] = {}  # set by pipeline.grade_one: work, plan, settings, threads, flags (list)


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


def _is_test(cell) -> bool:
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


def _is_instructor_code(cell) -> bool:
    m = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and m.get("locked") and not m.get("solution") and not m.get("grade")


def _is_student_code(cell) -> bool:
    """A code cell the student wrote: an answer cell or a cell they added (no nbgrader flags)."""
    if cell.cell_type != "code":
        return False
    m = cell.metadata.get("nbgrader", {})
    return bool(m.get("solution")) or not (m.get("grade") or m.get("locked") or m.get("task"))


def _names(source: str, *, bound: bool) -> set[str]:
    """Names a cell binds (assignments, defs, imports, deletions) or reads; empty if it does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]  # IPython magics
        try:
            tree = ast.parse("\n".join(lines))
        except (SyntaxError, ValueError):
            return set()
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load) != bound:
                out.add(node.id)
        elif bound and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif bound and isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif bound and isinstance(node, (ast.Global, ast.Nonlocal)):
            out |= set(node.names)
    return out


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ENV_ERRORS = ("ModuleNotFoundError", "ImportError", "FileNotFoundError")
_IPYTHON_NAMES = {"get_ipython", "display", "In", "Out", "exit", "quit", "_", "__", "___", "_ih", "_oh", "_dh"}


def error_line(cell) -> str:
    """The first error of a cell in one line: 'AssertionError: message', or, when the message is empty, the line
    that raised ('AssertionError at line 3: assert add(2, 3) == 5')."""
    for o in cell.get("outputs", []):
        if o.get("output_type") != "error":
            continue
        value = str(o.get("evalue") or "").strip()
        if value:
            return f"{o.get('ename')}: {value.splitlines()[0]}"[:240]
        where = ""
        for frame in _ANSI.sub("", "\n".join(o.get("traceback", []))).split("\n"):
            m = re.match(r"\s*-+>\s*(\d+)\s(.*)", frame)
            if m:
                where = f" at line {m.group(1)}: {m.group(2).strip()}"
        return (f"{o.get('ename')}{where}")[:240]
    return ""


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel inside the sandbox; talks to it over unix sockets in a private folder."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self._w7_dir = Path(tempfile.mkdtemp(prefix="w7k-"))
        self.transport = "ipc"
        self.ip = str(self._w7_dir / "k")
        self.connection_file = str(self._w7_dir / "kernel.json")

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        ctx = CONTEXT
        plan = ctx["plan"]
        sandbox.prepare_dirs(plan, self._w7_dir)
        return sandbox.wrap_argv(plan, cmd, work=Path(ctx["work"]), kernel_dir=self._w7_dir,
                                 settings=ctx["settings"], threads=ctx.get("threads", 1))

    def write_connection_file(self, **kwargs):
        super().write_connection_file(**kwargs)
        plan = CONTEXT.get("plan")
        if plan is not None and plan.mode == "bwrap-root":
            os.chown(self.connection_file, sandbox.SANDBOX_UID, sandbox.SANDBOX_GID)

    async def _async_pre_start_kernel(self, **kw):
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        # the kernel runs in its own session: interrupt it with a message, not a signal to our process group
        self.kernel_spec.interrupt_mode = "message"
        kw["env"] = {}  # bwrap --clearenv sets the kernel's environment; pass nothing of ours
        self._w7_log = open(self._w7_dir / "kernel.log", "wb")  # noqa: SIM115 - closed in cleanup
        kw["stdout"] = self._w7_log
        kw["stderr"] = self._w7_log
        return cmd, kw

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        try:
            await super()._async_cleanup_resources(restart=restart)
        finally:
            if not restart:
                log = getattr(self, "_w7_log", None)
                if log is not None:
                    log.close()
                    try:
                        CONTEXT["kernel_log"] = (self._w7_dir / "kernel.log").read_text(errors="replace")[-2000:]
                    except OSError:
                        pass
                shutil.rmtree(self._w7_dir, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources  # type: ignore[assignment]


class GuardedExecute(Execute):
    max_output_bytes = Integer(200_000, help="text and data bytes kept per cell").tag(config=True)
    notebook_timeout = Integer(300, help="seconds for the whole notebook (wall clock)").tag(config=True)
    max_record_bytes = Integer(16 * 2**20, help="bytes of week7.checks records kept per cell").tag(config=True)
    kill_grace = Integer(5, help="seconds a kernel gets to stop after an interrupt").tag(config=True)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def create_kernel_manager(self):
        if CONTEXT.get("plan") is not None:
            self.kernel_manager_class = SandboxedKernelManager
        return super().create_kernel_manager()

    async def async_start_new_kernel(self, **kwargs):
        await super().async_start_new_kernel(**kwargs)
        from . import runs

        runs.note_kernel(self.km)  # the next autograde run ends it if this run is killed (runs.py)

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        if isinstance(self.km, SandboxedKernelManager):  # sockets are bound: the kernel may write no more there
            sandbox.seal_kernel_dir(CONTEXT.get("plan"), self.km._w7_dir)
        return kc

    # nbclient's sync names wrap its own async functions: point them at the ones above (nbconvert calls these)
    start_new_kernel = run_sync(async_start_new_kernel)
    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def preprocess(self, nb: NotebookNode, resources: dict, km=None):
        ctx = CONTEXT
        self._flags: list[str] = ctx.setdefault("flags", [])
        self._output_used: dict[int, int] = {}
        self._record_used: dict[int, int] = {}
        self._deadline = time.monotonic() + float(ctx.get("notebook_timeout", self.notebook_timeout))
        self._stopped: str | None = None
        self._infra: list[str] = ctx.setdefault("infra", [])
        self._student_ran = False
        self._student_counts: set[int] = set()
        code = [c for c in nb.cells if c.cell_type == "code"]
        self._student_names = set(ctx.get("solution_names", ())).union(
            *(_names(c.source, bound=True) for c in code if _is_student_code(c)))
        self._instructor_names = set(dir(builtins)) | _IPYTHON_NAMES | set().union(
            *(_names(c.source, bound=True) for c in code if not _is_student_code(c)))
        try:
            nb, resources = super().preprocess(nb, resources, km=km)
        except Exception as e:  # noqa: BLE001 - a broken kernel must not stop nbgrader (or the batch)
            self._stop(f"execution stopped: {type(e).__name__}: {str(e)[:200]}")
            self._infra.append(f"the notebook could not be executed: {type(e).__name__}: {str(e)[:200]}"
                               + (" (the kernel did not start: check the sandbox, the limits and the course "
                                  "environment)" if "kernel" in str(e).lower() else ""))
        finally:
            self._finish(nb)
        return nb, resources

    def _stop(self, reason: str) -> None:
        if self._stopped is None:
            self._stopped = reason
            self._flags.append(reason)

    def _finish(self, nb: NotebookNode) -> None:
        """Test cells that never ran get an error (nbgrader would give full marks to a cell with no output)."""
        for c in nb.cells:
            if _is_test(c) and not (c.get("execution_count") is not None or c.get("outputs")):
                c.outputs = [_error("AutograderNotRun", self._stopped or "not run")]

    # -- execution ---------------------------------------------------------------------------------------------
    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if self._stopped is not None:
            if cell.cell_type == "code":
                cell.outputs = [_error("AutograderNotRun", self._stopped)]
            return cell
        left = self._deadline - time.monotonic()
        if left <= 0 and cell.cell_type == "code":
            self._stop(f"notebook time limit reached ({CONTEXT.get('notebook_timeout', self.notebook_timeout)}"
                       " s); later cells not run")
            cell.outputs = [_error("AutograderNotRun", self._stopped)]
            return cell
        self._timed_out = False
        student = _is_student_code(cell)
        self._student_ran |= student
        try:
            cell = await super().async_execute_cell(cell, cell_index, execution_count=execution_count,
                                                    store_history=store_history)
        except Exception as e:  # noqa: BLE001 - DeadKernelError, CellTimeoutError, zmq errors
            if self._timed_out or type(e).__name__ == "CellTimeoutError":
                self._stop(f"cell {cell_index} went over its time limit ({self.timeout} s) and did not stop when "
                           "interrupted; kernel killed, later cells not run")
                await self._kill()
            else:
                self._stop(f"kernel stopped in cell {cell_index}: {type(e).__name__}: {str(e)[:120]}"
                           " (memory, CPU time or process limit, or the code exited the kernel)")
            if not self._student_ran:
                self._infra.append(f"{self._stopped}, in {self._name(cell)}, before any student code ran")
            cell.outputs = list(cell.get("outputs", [])) + [_error("AutograderKernelDied", self._stopped)]
            return cell
        if student and cell.get("execution_count") is not None:
            self._student_counts.add(int(cell.execution_count))
        elif _is_instructor_code(cell) and any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            why = self._environment_error(cell)
            if why is not None:
                self._infra.append(why)
        if self._timed_out:
            await self._ensure_responsive(cell_index)
        return cell

    @staticmethod
    def _name(cell) -> str:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        return f"instructor cell {gid!r}" if gid else "an instructor cell"

    def _environment_error(self, cell) -> str | None:
        """The reason an instructor cell's error is an infrastructure failure, or None when it is the student's
        (see the module docstring for the rule)."""
        err = next(o for o in cell.outputs if o.get("output_type") == "error")
        tb = _ANSI.sub("", "\n".join(err.get("traceback", [])))
        if {int(n) for n in re.findall(r"Cell In\[(\d+)\]", tb)} & self._student_counts:
            return None  # raised inside code the student wrote (e.g. a stub's NotImplementedError)
        what = f"{self._name(cell)} raised {error_line(cell)}"
        if err.get("ename") in _ENV_ERRORS:
            return f"{what}: the grading environment lacks a module or file the course needs"
        if not self._student_ran:
            return f"{what} before any student code ran: the grading environment is broken"
        reads = _names(cell.source, bound=False)
        if reads & self._student_names or reads - self._instructor_names:
            return None  # it uses a name the student's cells bind (or had to bind)
        return f"{what}; it uses no name the student's code defines: the grading environment is broken"

    execute_cell = run_sync(async_execute_cell)

    def _get_timeout(self, cell):
        base = super()._get_timeout(cell)
        left = max(1, int(self._deadline - time.monotonic())) if hasattr(self, "_deadline") else base
        return min(base, left) if base else left

    async def _async_handle_timeout(self, timeout, cell=None):
        self._timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    async def _ensure_responsive(self, cell_index: int) -> None:
        """After a timeout the kernel was interrupted; if it does not answer within kill_grace, kill it."""
        try:
            msg_id = self.kc.execute("pass", silent=True, store_history=False)
            deadline = time.monotonic() + self.kill_grace
            while time.monotonic() < deadline:
                try:
                    msg = await asyncio.wait_for(self.kc.shell_channel.get_msg(timeout=0.2), timeout=1)
                except Exception:  # noqa: BLE001 - Empty / timeout
                    continue
                if msg.get("parent_header", {}).get("msg_id") == msg_id:
                    return
        except Exception:  # noqa: BLE001
            pass
        self._stop(f"cell {cell_index} went over its time limit ({self.timeout} s) and did not stop when "
                   "interrupted; kernel killed, later cells not run")
        await self._kill()

    async def _kill(self) -> None:
        try:
            await self.km.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001
            pass

    def output(self, outs: list[NotebookNode], msg: dict[str, t.Any], display_id: str | None,
               cell_index: int) -> NotebookNode | None:
        content = msg.get("content", {})
        if msg.get("msg_type") == "error":
            return super().output(outs, msg, display_id, cell_index)
        data = content.get("data", {}) or {}
        if RECORD_MIME in data and len(data) == 1:  # a test cell's results for the grader: a budget of their own
            size = len(str(data[RECORD_MIME]))
            used = self._record_used.get(cell_index, 0) + size
            self._record_used[cell_index] = used
            if used > self.max_record_bytes:
                if not any("records over" in f for f in self._flags):
                    self._flags.append(f"records over {self.max_record_bytes} bytes in a cell: the rest dropped")
                return None
            return super().output(outs, msg, display_id, cell_index)
        used = self._output_used.get(cell_index, 0)
        size = len(str(content.get("text", ""))) + sum(len(str(v)) for v in data.values())
        if used >= self.max_output_bytes:
            return None
        self._output_used[cell_index] = used + size
        if used + size > self.max_output_bytes:
            keep = max(self.max_output_bytes - used, 0)
            text = str(content.get("text", ""))[:keep] + TRUNCATED.format(n=self.max_output_bytes)
            out = NotebookNode(output_type="stream", name="stdout", text=text)
            outs.append(out)
            if not any("output truncated" in f for f in self._flags):
                self._flags.append(f"output truncated at {self.max_output_bytes} bytes in a cell")
            return out
        return super().output(outs, msg, display_id, cell_index)


def _first_error(cell) -> str:
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return f"{o.get('ename')}: {str(o.get('evalue'))[:160]}"
    return ""


class StderrCounts(NbGraderPreprocessor):
    """Keep stderr text of autograded test cells as ordinary output: only an error costs the points."""

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int):
        if _is_test(cell):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    out["name"] = "stdout"
                    out["text"] = "[stderr] " + out.get("text", "")
        return cell, resources
