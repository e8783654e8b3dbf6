"""External probes: properties that a test cell's values cannot show, observed from outside the student's kernel.

A value recorded in the kernel (week7.checks.record) shows *what* a function returns, not *how*: a dense attention
returns the same numbers as a block-sparse one. A probe runs the student's functions again in a fresh, sandboxed
`python` process under resource limits sized so that the wrong way cannot finish, for example an address-space
limit (RLIMIT_AS) below the n x n scores at the probe's n: the process then records the outputs, or crashes, runs
out of memory or time and records nothing, and the comparator fails the cell because a case the solution recorded
is missing.

Probes are declared by the instructor in `<assignment source>/probes.py` (never released, never copied into the
sandbox's working folder):

    PROBES = [{"grade_id": "sparse-attention-memory",   # the test cell whose records the probe's records join
               "case": "probe n=16384",                  # the case name the probe records (more are kept too)
               "memory_mb": 192,                         # address space allowed above the baseline (see below)
               "timeout_s": 60,                          # wall clock for the whole process
               "code": "...python that calls the student's functions and week7.checks.record(...)...",
               "before": "...optional python run before the student's cells (after the limit is set)..."}]

The probe's script is, in order: the notebook's code cells except the test cells, each filtered by `ast` to
imports, function and class definitions and module-level assignments of constants (`keep`; so top-level
experiments of a student, figures and prints are not run), then the probe's code; a probe's optional `before` code
runs before the student's cells (to take a function away, say). The harness around it:

- imports what the set-up cells import, then measures the process's address space (VmSize: python + torch + the
  course package, about 600 MB on the course machine) and sets RLIMIT_AS, soft and hard, to that baseline plus
  `memory_mb`; the student's cells and the probe's code run under it. Measuring the baseline in the process makes
  the limit independent of the machine's libraries: `memory_mb` is what the computation itself may use.
- one thread (OMP/MKL variables and torch.set_num_threads), RLIMIT_CPU a little above the timeout.
- whatever the student's code prints goes to stderr; the records go to the process's real stdout as
  `W7RECORD <json>` lines (week7.checks.record's format outside IPython), followed by an end marker. Only a
  process that exits with status 0 after the marker counts; its records are the probe's.

`run` never raises for a bad submission: a probe that fails records nothing. The grader (autograder/compare.py)
calls it for the solution's reference run and for every submission and merges the records into the cells'.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import runpy
import secrets
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from nbformat import NotebookNode

PREFIX = "W7RECORD "
MAX_STDOUT = 4 * 2**20  # bytes of a probe's stdout that are read
SAFE_CALLS = {"float", "int", "str", "bool", "complex", "bytes", "tuple", "list", "dict", "set", "frozenset",
              "range", "slice"}


def load_probes(source_dir: Path) -> list[dict]:
    """The PROBES list of `source_dir/probes.py` ([] when there is none)."""
    path = Path(source_dir) / "probes.py"
    if not path.is_file():
        return []
    probes = runpy.run_path(str(path)).get("PROBES", [])
    for p in probes:
        missing = {"grade_id", "case", "memory_mb", "timeout_s", "code"} - set(p)
        if missing:
            raise ValueError(f"{path}: a probe lacks {sorted(missing)}")
    return list(probes)


def _constant(node: ast.AST) -> bool:
    """A cheap expression: literals, names, attributes, operators, containers, lambdas, calls of SAFE_CALLS."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            if not (isinstance(sub.func, ast.Name) and sub.func.id in SAFE_CALLS):
                return False
        elif isinstance(sub, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr, ast.ListComp, ast.SetComp,
                              ast.DictComp, ast.GeneratorExp)):
            return False
    return True


def _kept(stmt: ast.stmt) -> bool:
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Pass)):
        return True
    if isinstance(stmt, ast.Assign):
        return _constant(stmt.value)
    if isinstance(stmt, ast.AnnAssign):
        return stmt.value is None or _constant(stmt.value)
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
        return True  # a docstring
    if isinstance(stmt, ast.Try):  # try: import x / except ImportError: x = None
        body = stmt.body + stmt.orelse + stmt.finalbody + [s for h in stmt.handlers for s in h.body]
        return all(_kept(s) for s in body)
    return False


def keep(source: str) -> str:
    """The imports, definitions and constant assignments of a cell's code ("" when it does not parse)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)  # %magics and !shell become calls: dropped below
    except Exception:  # noqa: BLE001 - IPython missing or a cell it cannot transform: parse as it is
        pass
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    tree.body = [s for s in tree.body if _kept(s)]
    return ast.unparse(tree)


def _is_test(cell: NotebookNode) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def _locked_sources(source: NotebookNode | None) -> dict[str, str] | None:
    if source is None:
        return None
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
            if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("grade_id")}


def notebook_code(nb: NotebookNode, source: NotebookNode | None = None) -> tuple[str, str]:
    """(imports of the locked set-up cells, the kept code of every non-test code cell in order).

    `source`: the instructor's notebook; a locked cell's code is then taken from it (by grade id), whatever the
    submission holds, and a locked cell it does not have is dropped."""
    imports, kept = [], []
    locked = _locked_sources(source)
    for cell in nb.cells:
        if cell.cell_type != "code" or _is_test(cell):
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        text = cell.source
        if meta.get("locked") and not meta.get("solution") and locked is not None:
            text = locked.get(meta.get("grade_id"), "")
        code = keep(text)
        if not code.strip():
            continue
        if meta.get("locked") and not meta.get("solution"):  # instructor code (nbgrader restores locked cells)
            try:
                imports += [ast.unparse(s) for s in ast.parse(code).body if isinstance(s, (ast.Import, ast.ImportFrom))]
            except SyntaxError:
                pass
        kept.append(f"# --- cell {cell.get('id', '')}\n{code}")
    return "\n".join(imports), "\n\n".join(kept)


HARNESS = '''\
import os, sys, json, resource
_w7_out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
sys.stdout = sys.stderr  # what the student's code prints goes to stderr
try:
    import torch
    torch.set_num_threads({threads})
except ImportError:
    pass
{imports}
import week7.checks as _w7_checks

def _w7_status(key):  # bytes of a Vm* line of /proc/self/status
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0

_w7_base = _w7_status("VmSize")
_w7_limit = _w7_base + {memory_mb} * 2**20
resource.setrlimit(resource.RLIMIT_AS, (_w7_limit, _w7_limit))
_w7_cpu = {cpu_s}
resource.setrlimit(resource.RLIMIT_CPU, (_w7_cpu, _w7_cpu))
_w7_record = _w7_checks.record

def _w7_emit(case, value, *, rtol=1e-4, atol=1e-6):
    saved = sys.stdout
    sys.stdout = _w7_out
    try:
        _w7_record(case, value, rtol=rtol, atol=atol)
    finally:
        sys.stdout = saved

_w7_checks.record = _w7_emit
_w7_out.write("W7PROBE base %d limit %d\\n" % (_w7_base, _w7_limit))
_w7_out.flush()

# --- the probe's set-up, before the student's code
{before}

{student}

# --- the probe
from week7.checks import record, raised
{code}

_w7_out.write("W7PROBE peak %d\\n" % _w7_status("VmPeak"))
_w7_out.write("W7PROBE done {token}\\n")
_w7_out.flush()
'''


def script(nb: NotebookNode, probe: dict, *, threads: int = 1, token: str = "",
           source: NotebookNode | None = None) -> str:
    """The probe's python script for notebook `nb` (its set-up, the student's kept code, the probe's code)."""
    imports, student = notebook_code(nb, source)
    return HARNESS.format(threads=int(threads), imports=imports, memory_mb=int(probe["memory_mb"]),
                          cpu_s=int(float(probe["timeout_s"])) + 5, student=student,
                          before=textwrap.dedent(probe.get("before", "")),
                          code=textwrap.dedent(probe["code"]), token=token)


@dataclasses.dataclass
class Outcome:
    records: dict[str, dict]  # case -> record; {} unless the process finished cleanly
    status: str  # "ok", "timeout", "exit N", "no end marker", "error: ..."
    seconds: float
    base: int = 0  # VmSize after the set-up imports, bytes
    limit: int = 0  # RLIMIT_AS, bytes
    peak: int = 0  # VmPeak at the end, bytes
    stderr: str = ""


def _parse(stdout: str, token: str) -> tuple[dict[str, dict], dict[str, int], bool]:
    records: dict[str, dict] = {}
    info: dict[str, int] = {}
    done = False
    for line in stdout.splitlines():
        if line.startswith(PREFIX):
            try:
                rec = json.loads(line[len(PREFIX):])
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("case"), str) and rec["case"] not in records:
                records[rec["case"]] = {"case": rec["case"], "value": rec.get("value"),
                                        "rtol": float(rec.get("rtol", 1e-4)), "atol": float(rec.get("atol", 1e-6))}
        elif line.startswith("W7PROBE "):
            parts = line.split()
            if parts[1:3] == ["done", token]:
                done = True
            elif parts[1] == "base" and len(parts) == 5:
                info["base"], info["limit"] = int(parts[2]), int(parts[4])
            elif parts[1] == "peak" and len(parts) == 3:
                info["peak"] = int(parts[2])
    return records, info, done


def run_one(nb: NotebookNode, probe: dict, *, plan=None, settings=None, threads: int = 1,
            source: NotebookNode | None = None) -> Outcome:
    """Run one probe on notebook `nb` (`source`: the instructor's notebook, for the locked cells); never raises
    for a bad submission."""
    from . import sandbox
    from .settings import Settings

    t0 = time.monotonic()
    token = secrets.token_hex(8)
    try:
        text = script(nb, probe, threads=threads, token=token, source=source)
    except Exception as e:  # noqa: BLE001
        return Outcome({}, f"error: {type(e).__name__}: {e}", 0.0)
    settings = settings or Settings()
    timeout = float(probe["timeout_s"])
    with tempfile.TemporaryDirectory(prefix="w7probe-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        (work / "probe.py").write_text(text)
        env = None
        if plan is None or getattr(plan, "mode", "none") == "none":
            cmd = [sys.executable, str(work / "probe.py")]
            env = {k: v for k, v in os.environ.items() if not k.startswith("W7_")}
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONDONTWRITEBYTECODE="1")
            cwd = str(work)
        else:
            sandbox.prepare_dirs(plan, work)
            cmd = sandbox.wrap_argv(plan, [sys.executable, f"{sandbox.INNER_WORK}/probe.py"], work=work,
                                    kernel_dir=None, settings=settings, threads=threads)
            env, cwd = {}, None
        out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
        status = "ok"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd,
                                        start_new_session=True)
            except OSError as e:
                return Outcome({}, f"error: {e}", time.monotonic() - t0)
            try:
                rc = proc.wait(timeout=timeout)
                if rc != 0:
                    status = f"exit {rc}"
            except subprocess.TimeoutExpired:
                status = "timeout"
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # the process and anything it started (bwrap: its sandbox)
                except OSError:
                    proc.kill()
                proc.wait()
        with open(out_path, "rb") as f:
            stdout = f.read(MAX_STDOUT).decode("utf-8", "replace")
        with open(err_path, "rb") as f:
            f.seek(max(0, err_path.stat().st_size - 4000))
            stderr = f.read().decode("utf-8", "replace")
    records, info, done = _parse(stdout, token)
    if status == "ok" and not done:
        status = "no end marker"
    return Outcome(records if status == "ok" else {}, status, time.monotonic() - t0, info.get("base", 0),
                   info.get("limit", 0), info.get("peak", 0), stderr)


def _source_for(source_dir: Path, nb: NotebookNode) -> NotebookNode | None:
    """The instructor's notebook of `source_dir` that `nb` is a copy of (most grade ids in common), or None."""
    try:
        from .source import source_notebooks

        ids = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells} - {None}
        best = max(source_notebooks(source_dir).values(),
                   key=lambda s: len(ids & {c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                                            for c in s.cells}), default=None)
        return best
    except Exception:  # noqa: BLE001 - no readable source: the submission's (nbgrader-restored) locked cells
        return None


def run(source_dir: Path, nb: NotebookNode, *, plan, settings, threads: int = 1) -> dict[str, dict[str, dict]]:
    """grade_id -> case -> record ({"case", "value", "rtol", "atol"}) from every probe of `source_dir/probes.py`.

    `plan`: the sandbox plan (autograder.sandbox.check); None runs the probes unsandboxed (tests, W7_SANDBOX=none).
    A probe that crashes, runs out of memory or time records nothing. Never raises for a bad submission.
    """
    out: dict[str, dict[str, dict]] = {}
    probes = load_probes(Path(source_dir))
    source = _source_for(Path(source_dir), nb) if probes else None
    for probe in probes:
        res = run_one(nb, probe, plan=plan, settings=settings, threads=threads, source=source)
        out.setdefault(probe["grade_id"], {}).update(res.records)
    return out


if __name__ == "__main__":  # python -m autograder.probe SOURCE_DIR NOTEBOOK.ipynb: what each probe did
    import nbformat

    src, path = Path(sys.argv[1]), Path(sys.argv[2])
    nb = nbformat.read(path, as_version=4) if path.suffix == ".ipynb" else __import__(
        "autograder.source", fromlist=["read_source"]).read_source(path)
    for p in load_probes(src):
        r = run_one(nb, p)
        print(f"{p['grade_id']} / {p['case']}: {r.status} in {r.seconds:.1f} s; base {r.base / 2**20:.0f} MB, "
              f"limit {r.limit / 2**20:.0f} MB, peak {r.peak / 2**20:.0f} MB; records {sorted(r.records)}")
        if r.status != "ok":
            print(textwrap.indent(r.stderr[-1500:], "    "))
