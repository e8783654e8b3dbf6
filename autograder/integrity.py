"""Checks and repairs a submission before nbgrader sees it, so that a damaged notebook is graded like an honest
one (at most the marks its answers earn) instead of stopping the batch, and every repair is flagged.

What is checked, per notebook of the assignment (compared with the released student version):
- missing notebook, unreadable or corrupt JSON, not nbformat 4       -> graded as the unmodified release (0)
- duplicate grade ids (a copy-pasted graded cell)                   -> later copies lose their nbgrader metadata
- a graded/locked cell deleted, or its nbgrader metadata removed    -> put back from the release (tests from source)
- changed points, grade/solution/locked flags or cell type          -> restored from the release
- another kernel in the metadata                                    -> restored to the release's kernelspec
- extra files beside the notebooks (modules that would shadow imports, data) -> never copied into the sandbox
"""

from __future__ import annotations

import copy
import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode


@dataclass
class Prepared:
    notebooks: dict[str, NotebookNode]  # notebook id -> notebook to grade
    flags: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # notebook ids the student did not hand in (graded as 0)


def _nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _gid(cell) -> str | None:
    m = _nbg(cell)
    if m.get("grade") or m.get("solution") or m.get("locked") or m.get("task"):
        return m.get("grade_id")
    return None


def submission_files(submission: Path, notebook_ids: list[str]) -> tuple[dict[str, Path], list[str]]:
    """Map notebook id -> submitted file; return also the names of extra files (ignored, flagged)."""
    submission = Path(submission)
    if submission.is_file() or (not submission.exists() and submission.suffix == ".ipynb"):
        if len(notebook_ids) != 1:
            return {}, []  # caller flags: a single file for a multi-notebook assignment
        return ({notebook_ids[0]: submission} if submission.exists() else {}), []
    found: dict[str, Path] = {}
    extra: list[str] = []
    if submission.is_dir():
        for p in sorted(submission.rglob("*")):
            if not p.is_file():
                continue
            rel = p.relative_to(submission).as_posix()
            if any(fnmatch.fnmatch(part, pat) for part in rel.split("/")
                   # timestamp.txt and submission_secret.txt are written by nbgrader's own submit
                   for pat in (".ipynb_checkpoints", "__pycache__", "*.pyc", "timestamp.txt",
                               "submission_secret.txt")):
                continue
            if p.parent == submission and p.suffix == ".ipynb" and p.stem in notebook_ids:
                found[p.stem] = p
            else:
                extra.append(rel)
    return found, extra


def _read(path: Path) -> tuple[NotebookNode | None, str | None]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        return None, f"unreadable ({e.strerror})"
    if len(raw) > 50 * 2**20:
        return None, f"too large ({len(raw) // 2**20} MB)"
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, f"corrupt JSON ({type(e).__name__}: {str(e)[:80]})"
    if not isinstance(data, dict) or data.get("nbformat") != 4 or not isinstance(data.get("cells"), list):
        return None, "not an nbformat 4 notebook"
    try:
        nb = nbformat.from_dict(data)
        for c in nb.cells:
            if c.get("cell_type") not in ("code", "markdown", "raw") or not isinstance(c.get("metadata", {}), dict):
                return None, "malformed cell"
            src = c.get("source", "")
            if isinstance(src, list):
                c["source"] = "".join(str(s) for s in src)
            elif not isinstance(src, str):
                return None, "malformed cell source"
            c.setdefault("metadata", NotebookNode())
            if c["cell_type"] == "code":
                c["outputs"] = []
                c["execution_count"] = None
    except Exception as e:  # noqa: BLE001 - any malformed structure counts as damage
        return None, f"malformed notebook ({type(e).__name__})"
    return nb, None


def repair(nb: NotebookNode, release: NotebookNode, nb_id: str) -> tuple[NotebookNode, list[str]]:
    """Return a gradable copy of `nb` whose graded cells match `release`'s, and the flags for what was fixed."""
    flags: list[str] = []
    rel_cells = {(_gid(c)): c for c in release.cells if _gid(c)}
    order = [_gid(c) for c in release.cells if _gid(c)]
    out = copy.deepcopy(nb)
    seen: set[str] = set()
    cells = []
    for c in out.cells:
        gid = _gid(c)
        if gid is None and "nbgrader" in c.get("metadata", {}):
            c.metadata.pop("nbgrader", None)
        if gid is not None and (gid in seen or gid not in rel_cells):
            flags.append(f"{nb_id}: {'duplicate' if gid in seen else 'unknown'} grade id {gid!r} (copy not graded)")
            c.metadata.pop("nbgrader", None)
            c.metadata.pop("editable", None)
            c.metadata.pop("deletable", None)
            cells.append(c)
            continue
        if gid is not None:
            seen.add(gid)
            ref = rel_cells[gid]
            mine, theirs = _nbg(c), _nbg(ref)
            changed = [k for k in ("grade", "solution", "locked", "points", "task")
                       if mine.get(k) != theirs.get(k)]
            if c.cell_type != ref.cell_type:
                changed.append("cell_type")
            if changed:
                flags.append(f"{nb_id}: cell {gid!r} metadata changed ({', '.join(changed)}); restored")
                if theirs.get("solution"):
                    src = c.source if c.cell_type == ref.cell_type else ref.source
                    c = copy.deepcopy(ref)
                    c.source = src
                else:
                    c = copy.deepcopy(ref)
        cells.append(c)
    # put back deleted graded cells after the graded cell that precedes them in the release
    for i, gid in enumerate(order):
        if gid in seen:
            continue
        flags.append(f"{nb_id}: graded cell {gid!r} deleted; restored from the release")
        pos = 0
        for prev in reversed(order[:i]):
            idx = next((k for k, c in enumerate(cells) if _gid(c) == prev), None)
            if idx is not None:
                pos = idx + 1
                break
        cells.insert(pos, copy.deepcopy(rel_cells[gid]))
        seen.add(gid)
    out.cells = cells
    ks, rks = out.metadata.get("kernelspec", {}), release.metadata.get("kernelspec", {})
    if ks.get("name") != rks.get("name") or ks.get("language") != rks.get("language"):
        flags.append(f"{nb_id}: kernel {ks.get('name')!r} replaced by {rks.get('name')!r}")
    out.metadata["kernelspec"] = copy.deepcopy(rks)
    for c in out.cells:
        c.pop("id", None) if out.nbformat_minor < 5 else None
    return out, flags


def prepare(submission: Path, releases: dict[str, NotebookNode]) -> Prepared:
    """Read, check and repair one student's submission; `releases` maps notebook id -> released notebook."""
    ids = sorted(releases)
    files, extra = submission_files(Path(submission), ids)
    prep = Prepared(notebooks={})
    sub = Path(submission)
    if sub.is_file() and len(ids) != 1:
        prep.flags.append(f"one file handed in for an assignment of {len(ids)} notebooks ({', '.join(ids)})")
    if not sub.exists():
        prep.flags.append(f"submission not found: {sub}")
    for name in extra:
        prep.flags.append(f"extra file ignored: {name}")
    for nb_id in ids:
        if nb_id not in files:
            prep.missing.append(nb_id)
            prep.flags.append(f"{nb_id}: notebook missing (scores 0)")
            continue
        nb, why = _read(files[nb_id])
        if nb is None:
            prep.missing.append(nb_id)
            prep.flags.append(f"{nb_id}: {why} (scores 0)")
            continue
        fixed, flags = repair(nb, releases[nb_id], nb_id)
        prep.flags.extend(flags)
        prep.notebooks[nb_id] = fixed
    return prep
