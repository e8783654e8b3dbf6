"""Checks and repairs a submission before nbgrader sees it, so that a damaged notebook is graded like an honest
one (at most the marks its answers earn) instead of stopping the batch, and every repair is flagged.

What is checked, per notebook of the assignment (compared with the released student version):
- missing notebook, unreadable or corrupt JSON, not nbformat 4       -> graded as the unmodified release (0)
- duplicate grade ids (a copy-pasted graded cell)                   -> later copies lose their nbgrader metadata
- a graded/locked cell deleted, or its nbgrader metadata removed    -> put back from the release (tests from source)
- changed points, grade/solution/locked flags or cell type          -> restored from the release
- another kernel in the metadata                                    -> restored to the release's kernelspec
- extra files beside the notebooks (modules that would shadow imports, data) -> never copied into the sandbox
- OS litter (`__MACOSX`, `.DS_Store`, `Thumbs.db`, dot files)        -> ignored, not flagged

Which file is the notebook (`locate`): `<id>.ipynb` at the top of the submission; else the only notebook whose
name is a near miss (`Sparse_Attention.ipynb`, `sparse_attention (1).ipynb`, `sparse_attention-2.ipynb`, in a
subfolder too) or, failing that, the only notebook holding this notebook's grade ids, flagged "renamed: X -> Y".
A notebook whose grade ids belong to another assignment of the course is reported as that assignment's.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from .settings import is_litter
from .source import source_notebooks


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
            if any(is_litter(part) for part in rel.split("/")):
                continue
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


# -- which file is the notebook --------------------------------------------------------------------------------
NBGRADER_FILES = ("timestamp.txt", "submission_secret.txt")  # written by nbgrader's own submit
_COPY_SUFFIX = re.compile(r"(\s*\(\d+\)|\s*\(copy\)|[\s_-]+copy(\s*\d+)?|[\s_-]+\d+)$", re.I)


def near_name(stem: str) -> str:
    """A notebook name with case, separators and a browser's or OS's copy suffix removed:
    'Sparse_Attention', 'sparse_attention (1)', 'sparse-attention-2', 'sparse attention copy' -> 'sparse_attention'."""
    s = stem.strip().lower()
    while True:
        t = _COPY_SUFFIX.sub("", s).strip()
        if t == s or not t:
            break
        s = t
    return re.sub(r"[\s_.-]+", "_", s)


def grade_ids(nb: NotebookNode | dict | Path) -> set[str]:
    """The nbgrader grade ids of a notebook (a path, a dict or a notebook); empty if it cannot be read."""
    if isinstance(nb, Path):
        try:
            if nb.stat().st_size > 50 * 2**20:
                return set()
            nb = json.loads(nb.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return set()
    cells = nb.get("cells") if isinstance(nb, dict) else None
    out: set[str] = set()
    for c in cells if isinstance(cells, list) else []:
        if isinstance(c, dict) and isinstance(c.get("metadata"), dict) and isinstance(_nbg(c), dict):
            gid = _gid(c)
            if isinstance(gid, str):
                out.add(gid)
    return out


def course_grade_ids(solutions: Path, exclude: str | None = None) -> dict[str, set[str]]:
    """assignment -> grade ids of its source notebooks, for every assignment folder of `solutions` (but `exclude`)."""
    out: dict[str, set[str]] = {}
    for d in sorted(Path(solutions).iterdir()) if Path(solutions).is_dir() else []:
        if d.is_dir() and d.name != exclude:
            ids = set().union(*(grade_ids(nb) for nb in source_notebooks(d).values()))
            if ids:
                out[d.name] = ids
    return out


def _owner(ids: set[str], mine: set[str], others: dict[str, set[str]]) -> str | None:
    """The other assignment a notebook with grade ids `ids` belongs to (more of its ids than of `mine`), or None."""
    if not ids or not others:
        return None
    best = max(sorted(others), key=lambda a: len(ids & others[a]))
    n = len(ids & others[best])
    return best if n > 0 and n > len(ids & mine) else None


@dataclass
class Located:
    found: dict[str, Path]  # notebook id -> the file to grade as it
    notes: list[str] = field(default_factory=list)  # renamed / another assignment's / ambiguous (flags)
    extra: list[str] = field(default_factory=list)  # other files (relative names), never graded
    foreign: dict[str, str] = field(default_factory=dict)  # file (relative) -> the assignment it belongs to


def locate(submission: Path, expected: dict[str, set[str]], others: dict[str, set[str]] | None = None,
           assignment: str = "this assignment") -> Located:
    """Find each expected notebook (id -> its release's grade ids) in a submission folder or file; see the module
    docstring for the rules. `others`: grade ids of the course's other assignments (see course_grade_ids)."""
    sub, others = Path(submission), others or {}
    every = set().union(*expected.values()) if expected else set()
    loc = Located(found={})

    def foreign(p: Path, rel: str) -> bool:
        owner = _owner(grade_ids(p), every, others)
        if owner is not None:
            loc.foreign[rel] = owner
            loc.notes.append(f"{rel} is {owner}'s notebook, not {assignment}'s")
        return owner is not None

    if sub.is_file():
        if len(expected) == 1 and not foreign(sub, sub.name):
            loc.found[next(iter(expected))] = sub
        return loc
    if not sub.is_dir():
        return loc
    files = []
    for p in sorted(sub.rglob("*")):
        rel = p.relative_to(sub).as_posix()
        parts = rel.split("/")
        if not p.is_file() or any(is_litter(x) for x in parts) or rel in NBGRADER_FILES or \
                any(fnmatch.fnmatch(x, pat) for x in parts for pat in ("__pycache__", "*.pyc")):
            continue
        files.append((rel, p))
    pool = {rel: p for rel, p in files if p.suffix.lower() == ".ipynb"}
    for nb_id in sorted(expected):  # 1. the exact name at the top
        p = pool.get(f"{nb_id}.ipynb")
        if p is not None and not foreign(p, f"{nb_id}.ipynb"):
            loc.found[nb_id] = pool.pop(f"{nb_id}.ipynb")
    for rel in [r for r in pool if r in loc.foreign]:
        pool.pop(rel)
    missing = [i for i in sorted(expected) if i not in loc.found]
    for nb_id in missing:  # 2. the only near-miss name; 3. the only notebook holding this notebook's grade ids
        rivals = [i for i in missing if i != nb_id and near_name(i) == near_name(nb_id)]
        by_name = [r for r in pool if near_name(Path(r).stem) == near_name(nb_id)] if not rivals else []
        by_ids = [r for r in pool if grade_ids(pool[r]) & expected[nb_id]]
        for how in (by_name, by_ids):
            cands = [r for r in how if not foreign(pool[r], r)]
            if len(cands) == 1:
                loc.found[nb_id] = pool.pop(cands[0])
                loc.notes.append(f"renamed: {cands[0]} -> {nb_id}.ipynb")
                break
            if len(cands) > 1:
                loc.notes.append(f"{nb_id}.ipynb: {len(cands)} notebooks could be it ({', '.join(cands)}); none "
                                 "graded: keep only one")
                break
    for rel in list(pool):  # 4. what is left: another assignment's notebook?
        if foreign(pool[rel], rel):
            pool.pop(rel)
    used = set(loc.found.values())
    loc.extra = [rel for rel, p in files if p not in used and rel not in loc.foreign]
    return loc


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


def prepare(submission: Path, releases: dict[str, NotebookNode], others: dict[str, set[str]] | None = None,
            assignment: str = "this assignment") -> Prepared:
    """Read, check and repair one student's submission; `releases` maps notebook id -> released notebook;
    `others`: the grade ids of the course's other assignments (to name a notebook handed in to the wrong one)."""
    ids = sorted(releases)
    loc = locate(Path(submission), {k: grade_ids(v) for k, v in releases.items()}, others, assignment)
    files, extra = loc.found, loc.extra
    prep = Prepared(notebooks={})
    sub = Path(submission)
    if sub.is_file() and len(ids) != 1:
        prep.flags.append(f"one file handed in for an assignment of {len(ids)} notebooks ({', '.join(ids)})")
    if not sub.exists():
        prep.flags.append(f"submission not found: {sub}")
    repairs: list[str] = []
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
        repairs.extend(flags)
        prep.notebooks[nb_id] = fixed
    prep.flags.extend(loc.notes)  # renamed, another assignment's notebook, ambiguous
    prep.flags.extend(repairs)
    for name in extra:
        if any(name in n for n in loc.notes):
            continue
        prep.flags.append(f"extra file ignored: {name}" + (
            f" (not one of {', '.join(f'{i}.ipynb' for i in ids)})" if name.lower().endswith(".ipynb") else ""))
    return prep
