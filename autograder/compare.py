"""Scores that student code cannot reach: the grader compares plain data in its own process.

A test cell, executed in the student's sandboxed kernel, only *emits* its results (`week7.checks.record`: a
display output of MIME type `week7.checks.MIME` holding JSON). This module, in the grading worker's process:

- reads those outputs back with `json` and `numpy.frombuffer` (never pickle, eval or an import of student code),
  validating every field (`decode`): a malformed or oversized record is no record;
- compares each case with the *reference*: what the instructor's solution recorded for the same case, when the
  solution notebook was graded once in a clean sandboxed kernel (`references`, cached per hash of everything the
  values depend on);
- sets the cell's outcome for nbgrader (`CompareRecords`, a preprocessor between execution and SaveAutoGrades):
  every reference case present with an equal value -> the cell passes (an error the cell raised is kept as text);
  otherwise it fails, with an error output naming the visible cases that differ (expected and actual) and only
  the number of hidden ones.

Equality (`same`): the same kind (bool, int, float, str, none, list, dict, array); an int is accepted where the
reference holds a float, never the other way, and a bool is never a number; arrays need the same container
(tensor or ndarray), dtype and shape, then exact equality for bool and integer dtypes and `allclose` with the
reference's rtol/atol (NaN equal to NaN) for floats. The tolerance is the one the *solution's* call gave.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import sys
import typing as t
from pathlib import Path

import numpy as np
from nbformat.notebooknode import NotebookNode

from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor

from week7.checks import DTYPES, MIME  # the record format has one definition (stdlib only: no torch import)

KINDS = ("none", "bool", "int", "float", "str", "list", "dict", "array")
MAX_RECORD_BYTES = 8 * 2**20  # per record (decoded array bytes)
MAX_ITEMS = 100_000
VERSION = "1"  # part of the reference cache key: bump when recording or comparing changes


class BadRecord(ValueError):
    pass


# -- reading ------------------------------------------------------------------------------------------------------
def _number(x: t.Any, what: str) -> float:
    if isinstance(x, bool):
        raise BadRecord(f"{what}: a bool where a number belongs")
    if isinstance(x, (int, float)):
        return float(x)
    if x in ("nan", "inf", "-inf"):
        return float(x)
    raise BadRecord(f"{what}: not a number")


def decode(enc: t.Any, depth: int = 0, budget: list[int] | None = None) -> t.Any:
    """The plain value of an encoded record value, as (kind, payload) tuples the comparison understands."""
    budget = budget if budget is not None else [MAX_ITEMS]
    budget[0] -= 1
    if budget[0] < 0:
        raise BadRecord("too many items")
    if depth > 10 or not isinstance(enc, dict):
        raise BadRecord("not an encoded value")
    kind = enc.get("t")
    if kind not in KINDS:
        raise BadRecord(f"unknown kind {str(kind)[:20]!r}")
    v = enc.get("v")
    if kind == "none":
        return ("none", None)
    if kind == "bool":
        if not isinstance(v, bool):
            raise BadRecord("bool")
        return ("bool", v)
    if kind == "int":
        if isinstance(v, bool) or not isinstance(v, int) or abs(v) > 2**128:
            raise BadRecord("int")
        return ("int", v)
    if kind == "float":
        return ("float", _number(v, "float"))
    if kind == "str":
        if not isinstance(v, str) or len(v) > MAX_RECORD_BYTES:
            raise BadRecord("str")
        return ("str", v)
    if kind == "list":
        if not isinstance(v, list):
            raise BadRecord("list")
        return ("list", [decode(x, depth + 1, budget) for x in v])
    if kind == "dict":
        if not isinstance(v, list) or not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                                              for p in v):
            raise BadRecord("dict")
        keys = [p[0] for p in v]
        if len(set(keys)) != len(keys):
            raise BadRecord("dict with repeated keys")
        return ("dict", {k: decode(x, depth + 1, budget) for k, x in v})
    # array
    dtype, shape, data, box = enc.get("dtype"), enc.get("shape"), enc.get("b64"), enc.get("kind")
    if dtype not in DTYPES or box not in ("tensor", "ndarray") or not isinstance(data, str):
        raise BadRecord("array header")
    if not isinstance(shape, list) or len(shape) > 8 or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= 2**31 for s in shape):
        raise BadRecord("array shape")
    if len(data) > 4 * MAX_RECORD_BYTES // 3 + 4:
        raise BadRecord("array too large")
    try:
        raw = base64.b64decode(data, validate=True)
    except (ValueError, TypeError):
        raise BadRecord("array data") from None
    dt = np.dtype(dtype).newbyteorder("<")
    if len(raw) != math.prod(shape) * dt.itemsize:
        raise BadRecord("array size does not match its shape")
    arr = np.frombuffer(raw, dtype=dt).reshape(shape)
    return ("array", (box, dtype, arr))


def records_of(cell: NotebookNode) -> tuple[dict[str, dict], list[str]]:
    """case -> {"value": decoded, "rtol", "atol", "raw"} of one executed cell, and problems (bad or conflicting)."""
    out: dict[str, dict] = {}
    problems: list[str] = []
    for o in cell.get("outputs", []):
        if o.get("output_type") not in ("display_data", "execute_result"):
            continue
        rec = o.get("data", {}).get(MIME)
        if rec is None:
            continue
        if isinstance(rec, str):  # some front ends keep JSON bundles as text
            try:
                rec = json.loads(rec)
            except ValueError:
                problems.append("a record that is not JSON")
                continue
        try:
            if not isinstance(rec, dict) or not isinstance(rec.get("case"), str) or len(rec["case"]) > 200:
                raise BadRecord("no case name")
            value = decode(rec.get("value"))
            rtol = _number(rec.get("rtol", 1e-4), "rtol")
            atol = _number(rec.get("atol", 1e-6), "atol")
        except BadRecord as e:
            problems.append(f"an unreadable record ({e})")
            continue
        case = rec["case"]
        raw = json.dumps(rec.get("value"), sort_keys=True)
        if case in out and out[case]["raw"] != raw:
            out[case]["conflict"] = True
            continue
        out.setdefault(case, {"value": value, "rtol": rtol, "atol": atol, "raw": raw})
    return out, problems


# -- comparing ----------------------------------------------------------------------------------------------------
def same(ref: tuple, got: tuple, rtol: float, atol: float) -> str | None:
    """None when `got` equals `ref` (see the module docstring), else a short reason."""
    rk, rv = ref
    gk, gv = got
    if rk == "float" and gk == "int":
        gk, gv = "float", float(gv)
    if rk != gk:
        return f"a {gk} where a {rk} is expected"
    if rk in ("none",):
        return None
    if rk in ("bool", "int", "str"):
        return None if rv == gv else "a different value"
    if rk == "float":
        if math.isnan(rv) or math.isnan(gv):
            return None if math.isnan(rv) and math.isnan(gv) else "a different value"
        return None if (rv == gv or abs(gv - rv) <= atol + rtol * abs(rv)) else "a different value"
    if rk == "list":
        if len(rv) != len(gv):
            return f"{len(gv)} items where {len(rv)} are expected"
        for i, (a, b) in enumerate(zip(rv, gv)):
            why = same(a, b, rtol, atol)
            if why:
                return f"item {i}: {why}"
        return None
    if rk == "dict":
        if set(rv) != set(gv):
            return f"keys {sorted(gv)[:6]} where {sorted(rv)[:6]} are expected"
        for k in rv:
            why = same(rv[k], gv[k], rtol, atol)
            if why:
                return f"key {k!r}: {why}"
        return None
    rbox, rdt, ra = rv
    gbox, gdt, ga = gv
    if rbox != gbox:
        return f"a {'torch tensor' if gbox == 'tensor' else 'numpy array'} where a " \
               f"{'torch tensor' if rbox == 'tensor' else 'numpy array'} is expected"
    if rdt != gdt:
        return f"dtype {gdt} where {rdt} is expected"
    if ra.shape != ga.shape:
        return f"shape {tuple(ga.shape)} where {tuple(ra.shape)} is expected"
    if rdt.startswith("float"):
        ok = np.allclose(ga.astype(np.float64), ra.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)
    else:
        ok = np.array_equal(ga, ra)
    return None if ok else "different values"


def _show(v: tuple, limit: int = 160) -> str:
    kind, payload = v
    if kind == "array":
        box, dt, arr = payload
        s = f"{'tensor' if box == 'tensor' else 'array'}({np.array2string(arr, threshold=12, precision=4)}, " \
            f"dtype={dt}, shape={tuple(arr.shape)})"
    elif kind == "list":
        s = "[" + ", ".join(_show(x, 40) for x in payload[:8]) + (", ..." if len(payload) > 8 else "") + "]"
    elif kind == "dict":
        s = "{" + ", ".join(f"{k!r}: {_show(x, 40)}" for k, x in list(payload.items())[:8]) + "}"
    else:
        s = repr(payload)
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def visible_cases(release_source: str | None, cases: t.Iterable[str]) -> set[str]:
    """Cases whose name the student version's test cell spells out (a quoted literal): the others are hidden."""
    if not release_source:
        return set()
    return {c for c in cases if f'"{c}"' in release_source or f"'{c}'" in release_source}


def judge(reference: dict[str, dict], cell: NotebookNode, release_source: str | None) -> tuple[bool, str]:
    """(passed, message) for one test cell: every reference case must be recorded with an equal value."""
    got, problems = records_of(cell)
    visible = visible_cases(release_source, reference)
    shown: list[str] = []
    hidden_bad = 0
    for case, ref in reference.items():
        mine = got.get(case)
        if mine is None:
            why = "not recorded (the cell stopped before it, or the result was not plain data)"
        elif mine.get("conflict"):
            why = "recorded twice with different values"
        else:
            why = same(ref["value"], mine["value"], ref["rtol"], ref["atol"])
            if why and case in visible:
                why += f": expected {_show(ref['value'])}, got {_show(mine['value'])}"
        if why:
            if case in visible:
                shown.append(f"case {case!r}: {why}")
            else:
                hidden_bad += 1
    if not shown and not hidden_bad:
        return True, ""
    parts = shown[:5] + ([f"... and {len(shown) - 5} more visible case(s)"] if len(shown) > 5 else [])
    if hidden_bad:
        parts.append(f"{hidden_bad} hidden case(s) differ from the solution's results")
    if problems:
        parts.append("; ".join(dict.fromkeys(problems))[:300])
    return False, "; ".join(parts)


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class CompareRecords(NbGraderPreprocessor):
    """Between execution and nbgrader's SaveAutoGrades: decide each test cell from its records.

    The references come through kernel.CONTEXT["references"] ({notebook: {grade id: {case: record}}}); None means
    this run *makes* references (the solution's run): nothing is judged. A test cell with no reference case is left
    as nbgrader would score it (an error costs the points).
    """

    def preprocess(self, nb: NotebookNode, resources: dict):
        from .kernel import CONTEXT

        name = resources.get("unique_key", "")
        for extra_gid, extra in (CONTEXT.get("probe_records", {}).get(name, {}) or {}).items():
            for c in nb.cells:
                if c.metadata.get("nbgrader", {}).get("grade_id") == extra_gid:
                    c.setdefault("outputs", []).extend(
                        NotebookNode(output_type="display_data", metadata={}, data={MIME: r}) for r in extra.values())
        refs_all = CONTEXT.get("references")
        if refs_all is None:  # the solution's run: its records become the references
            return nb, resources
        refs = refs_all.get(name, {})
        releases = CONTEXT.get("release_sources", {}).get(name, {})
        for c in nb.cells:
            if c.cell_type != "code" or not utils.is_grade(c) or utils.is_solution(c):
                continue
            gid = c.metadata["nbgrader"]["grade_id"]
            ref = refs.get(gid)
            if not ref:
                continue
            ok, why = judge(ref, c, releases.get(gid))
            got, problems = records_of(c)
            conflicts = sorted(k for k, r in got.items() if r.get("conflict"))
            if problems or conflicts:  # honest code never emits records: someone forged or broke them
                CONTEXT.setdefault("flags", []).append(
                    f"{gid}: " + "; ".join(list(dict.fromkeys(problems))[:3] +
                                           ([f"{len(conflicts)} case(s) recorded twice with different values"]
                                            if conflicts else [])))
            outs = list(c.get("outputs", []))
            if ok:
                for i, o in enumerate(outs):  # an error after every case matched: kept as text, not scored
                    if o.get("output_type") == "error":
                        outs[i] = NotebookNode(output_type="stream", name="stdout",
                                               text=f"[the cell raised {o.get('ename')}: {o.get('evalue')}, "
                                                    f"after recording every result: not scored]\n")
            elif not any(o.get("output_type") == "error" for o in outs):
                outs.append(_error("AutograderMismatch", why))
            else:
                outs.append(NotebookNode(output_type="stream", name="stdout", text=f"[grader] {why}\n"))
            c.outputs = outs
        return nb, resources


# -- references ---------------------------------------------------------------------------------------------------
def references_from(folder: Path) -> dict[str, dict[str, dict[str, dict]]]:
    """{notebook: {grade id: {case: record}}} of the autograded notebooks in `folder` (the solution's run)."""
    import nbformat

    out: dict[str, dict[str, dict[str, dict]]] = {}
    for p in sorted(Path(folder).glob("*.ipynb")):
        nb = nbformat.read(p, as_version=4)
        per: dict[str, dict[str, dict]] = {}
        for c in nb.cells:
            if c.cell_type != "code" or not utils.is_grade(c) or utils.is_solution(c):
                continue
            recs, problems = records_of(c)
            bad = [k for k, r in recs.items() if r.get("conflict")]
            if problems or bad:
                raise RuntimeError(f"{p.name}, test cell {c.metadata['nbgrader']['grade_id']!r}: the solution's "
                                   f"records are not usable: {problems or ['cases recorded twice with different values: ' + ', '.join(bad)]}")
            if recs:
                per[c.metadata["nbgrader"]["grade_id"]] = recs
        out[p.stem] = per
    return out


def _to_json(refs: dict) -> dict:
    return {nb: {gid: {case: {"raw": r["raw"], "rtol": r["rtol"], "atol": r["atol"]} for case, r in cases.items()}
                 for gid, cases in per.items()} for nb, per in refs.items()}


def _from_json(data: dict) -> dict:
    return {nb: {gid: {case: {"value": decode(json.loads(r["raw"])), "rtol": r["rtol"], "atol": r["atol"],
                              "raw": r["raw"]} for case, r in cases.items()} for gid, cases in per.items()}
            for nb, per in data.items()}


def cache_key(source_dir: Path) -> str:
    """sha256 of what the solution's records depend on: the assignment's sources and data, the course package's
    code and data (names and sizes for large files), this module's VERSION, python, numpy and torch versions."""
    h = hashlib.sha256(f"v{VERSION} py{sys.version_info[:3]} np{np.__version__}".encode())
    try:
        from importlib.metadata import version

        h.update(f" torch{version('torch')} triton{version('triton')}".encode())
    except Exception:  # noqa: BLE001 - a missing package is part of the key too
        h.update(b" no-torch-or-triton")
    from .settings import REPO

    roots = [Path(source_dir), REPO / "src" / "week7"]
    for root in roots:
        for p in sorted(root.rglob("*")):
            rel = p.relative_to(root).as_posix()
            if not p.is_file() or "__pycache__" in rel or p.suffix in (".pyc",) or (root == roots[0] and p.suffix == ".ipynb"):
                continue
            h.update(rel.encode())
            size = p.stat().st_size
            h.update(p.read_bytes() if size < 4 * 2**20 else f"{size}".encode())
    return h.hexdigest()[:20]


def cache_dir() -> Path:
    from .settings import REPO

    return Path(os.environ.get("W7_REFERENCE_CACHE") or REPO / ".cache" / "references")


def load_cached(assignment: str, key: str) -> dict | None:
    p = cache_dir() / f"{assignment}-{key}.json"
    if not p.is_file():
        return None
    try:
        return _from_json(json.loads(p.read_text()))
    except (ValueError, KeyError, TypeError, BadRecord):
        return None


def save_cached(assignment: str, key: str, refs: dict) -> Path:
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{assignment}-{key}.json"
    tmp = p.with_name(p.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(_to_json(refs)))
    tmp.replace(p)
    for old in d.glob(f"{assignment}-*.json"):  # keep only the current key
        if old != p and re.fullmatch(rf"{re.escape(assignment)}-[0-9a-f]{{20}}\.json", old.name):
            old.unlink(missing_ok=True)
    return p
