"""The one source of each exercise: ``solutions/NN-slug/<name>.md``, jupytext MyST text with nbgrader's metadata.

nbgrader reads notebooks, so ``materialise`` writes ``<name>.ipynb`` beside each ``.md`` (git ignores it) before
any nbgrader step; everything else reads the source through ``load_solution`` / ``read_source``. An assignment
folder without any ``.md`` keeps its ``.ipynb`` as the source (a course that has not converted yet; the command
``python -m autograder to-myst solutions/NN-slug/x.ipynb`` converts one).

In the text, each cell's metadata (nbgrader's ``grade_id``, points, locks) sits in its MyST header; a cell's
notebook id is written there too (``id``) unless it is the default ``c000``, ``c001``, ... of its position, so that
the generated notebook, and the student version nbgrader makes from it, keep the ids they had.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import nbformat
from nbformat import NotebookNode

FMT = "md:myst"
ID_KEY = "id"  # where a cell's notebook id lives in the text's cell metadata
# the notebook metadata the text keeps (front matter); jupytext's own bookkeeping is dropped on the way back
NB_META = ("kernelspec", "language_info")
_JUPYTEXT_HEADER = re.compile(r"\A---\s*\n(?:.*\n)*?jupytext:\s*\n", re.M)


class SourceError(ValueError):
    """A source that cannot be read or a generated notebook that would overwrite someone's edits."""


def _default_id(i: int) -> str:
    return f"c{i:03d}"


def is_source_text(path: Path) -> bool:
    """True for a jupytext MyST notebook (front matter with a jupytext section), not any markdown file."""
    try:
        head = Path(path).read_text(encoding="utf-8")[:4000]
    except (OSError, UnicodeDecodeError):
        return False
    return bool(_JUPYTEXT_HEADER.match(head))


def source_files(folder: Path) -> list[Path]:
    """The source notebooks of an assignment folder: its MyST ``.md`` files, or its ``.ipynb`` when it has none."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    md = sorted(p for p in folder.glob("*.md") if is_source_text(p))
    return md or sorted(folder.glob("*.ipynb"))


def source_notebooks(folder: Path) -> dict[str, NotebookNode]:
    """notebook name -> source notebook, for every source notebook of an assignment folder (read from its text)."""
    return {p.stem: read_source(p) for p in source_files(folder)}


def notebook_ids(folder: Path) -> list[str]:
    """The assignment's notebook names (file stems), the same whichever format holds them."""
    return [p.stem for p in source_files(folder)]


def notebook_to_text(nb: NotebookNode) -> str:
    """MyST text of a notebook: cell sources, cell metadata (non-default ids included), kernelspec; no outputs."""
    import jupytext

    nb = nbformat.from_dict(copy.deepcopy(dict(nb)))
    seen: set[str] = set()
    for i, cell in enumerate(nb.cells):
        cid = cell.get("id")
        if cid in seen:
            raise SourceError(f"cell {i} repeats the id {cid!r}")
        if cid:
            seen.add(cid)
        meta = {k: v for k, v in cell.metadata.items() if k != ID_KEY}
        if cid and cid != _default_id(i):
            meta = {ID_KEY: cid, **meta}
        cell.metadata = meta
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    keep = {k: nb.metadata[k] for k in NB_META if k in nb.metadata}
    nb.metadata = {**keep, "jupytext": {"notebook_metadata_filter": ",".join([*keep, "jupytext", "-all"]),
                                        "text_representation": {"extension": ".md", "format_name": "myst",
                                                                "format_version": 0.13}}}
    text = jupytext.writes(nb, fmt=FMT)
    # the front matter the chapters have, without the version of jupytext that wrote it (a diff on every upgrade)
    return re.sub(r"^    jupytext_version: .*\n", "", text, count=1, flags=re.M)


def text_to_notebook(text: str, *, where: str = "<text>") -> NotebookNode:
    """The notebook a MyST text stands for (nbformat 4.5, ids restored, jupytext's bookkeeping dropped)."""
    import jupytext

    try:
        nb = jupytext.reads(text, fmt=FMT)
    except Exception as e:  # jupytext raises several types for malformed headers
        raise SourceError(f"{where}: not a readable MyST notebook ({type(e).__name__}: {e})") from e
    nb.metadata.pop("jupytext", None)
    nb.nbformat, nb.nbformat_minor = 4, 5
    ids: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        cid = cell.metadata.pop(ID_KEY, None) or _default_id(i)
        if cid in ids:
            raise SourceError(f"{where}: cells {ids[cid]} and {i} have the same id {cid!r}; give one another id")
        ids[cid] = i
        cell["id"] = str(cid)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    return nb


def read_source(path: Path) -> NotebookNode:
    """Read one source notebook, ``.md`` (MyST text) or ``.ipynb``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    if path.suffix == ".md":
        return text_to_notebook(path.read_text(encoding="utf-8"), where=str(path))
    return nbformat.read(path, as_version=4)


def _notebook_bytes(nb: NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def materialise(folder: Path) -> list[Path]:
    """Write ``<name>.ipynb`` beside each ``<name>.md`` of an assignment folder (nbgrader's input); returns the
    notebooks. A notebook whose text differs from its ``.md`` and that was saved after it (someone edited it in
    Jupyter) is never overwritten: the error says how to keep the edits. Folders without ``.md`` are left as they
    are (their ``.ipynb`` is the source)."""
    folder = Path(folder)
    out = []
    for md in source_files(folder):
        if md.suffix != ".md":
            out.append(md)
            continue
        nb = read_source(md)
        target = md.with_suffix(".ipynb")
        new = _notebook_bytes(nb)
        if target.exists():
            old = target.read_text(encoding="utf-8", errors="replace")
            if old == new:
                out.append(target)
                continue
            if target.stat().st_mtime > md.stat().st_mtime:
                try:
                    edited = notebook_to_text(nbformat.reads(old, as_version=4)) != notebook_to_text(nb)
                except Exception:  # noqa: BLE001  (an unreadable notebook counts as edited: keep it)
                    edited = True
                if edited:
                    raise SourceError(
                        f"{target} was changed after it was made from {md.name} (the .md is the source). To keep "
                        f"the changes: `python -m autograder to-myst {target}` (rewrites {md.name} from it); to "
                        f"drop them: delete {target.name}")
        _write_atomic(target, new)
        out.append(target)
    return out


def materialise_all(solutions: Path) -> None:
    """``materialise`` every assignment folder of ``solutions`` (before a step that reads all of them)."""
    for d in sorted(Path(solutions).iterdir()) if Path(solutions).is_dir() else []:
        if d.is_dir():
            materialise(d)


def _folder(assignment: str, course_root: Path | None) -> Path:
    from .settings import Settings

    s = Settings()
    if course_root is not None:
        s.course_root = Path(course_root).resolve()
    return s.solutions / assignment


def _pick(folder: Path, name: str | None) -> Path:
    files = {p.stem: p for p in source_files(folder)}
    if not files:
        raise FileNotFoundError(f"{folder} holds no source notebook (<name>.md in MyST, or <name>.ipynb)")
    if name is None:
        if len(files) != 1:
            raise ValueError(f"{folder} holds {len(files)} notebooks ({', '.join(sorted(files))}): name one")
        return next(iter(files.values()))
    stem = Path(name).stem
    if stem not in files:
        raise FileNotFoundError(f"no notebook {stem!r} in {folder} (have: {', '.join(sorted(files))})")
    return files[stem]


def load_solution(assignment: str, name: str | None = None, *, course_root: Path | None = None) -> NotebookNode:
    """The instructor's source notebook of ``assignment`` (``name``: which one, when it has several; with or
    without extension) as a notebook, read from its one source."""
    return read_source(_pick(_folder(assignment, course_root), name))


def solution_path(assignment: str, name: str | None = None, *, course_root: Path | None = None) -> Path:
    """A notebook file of the solution (to grade it like a submission): the ``.ipynb`` made from the ``.md``."""
    folder = _folder(assignment, course_root)
    src = _pick(folder, name)
    materialise(folder)
    return src.with_suffix(".ipynb")


def to_myst(ipynb: Path, *, remove: bool = False) -> tuple[Path, list[str]]:
    """Convert a source notebook to ``<name>.md`` beside it (the command ``to-myst``); checks that the text reads
    back to the same cells, metadata and ids before writing. Returns the .md and the ids of cells whose trailing
    newlines were dropped (MyST text cannot hold them). ``remove``: delete the ``.ipynb`` afterwards."""
    ipynb = Path(ipynb)
    if ipynb.suffix != ".ipynb" or not ipynb.is_file():
        raise SourceError(f"{ipynb}: expected an existing .ipynb file")
    try:
        nb = nbformat.read(ipynb, as_version=4)
    except Exception as e:  # noqa: BLE001  (JSON or schema errors: say which file)
        raise SourceError(f"{ipynb}: not a readable notebook ({type(e).__name__}: {e})") from e
    changed = []
    for i, cell in enumerate(nb.cells):
        if cell.source != cell.source.rstrip("\n"):
            cell.source = cell.source.rstrip("\n")
            changed.append(str(cell.get("id") or i))
    text = notebook_to_text(nb)
    back = text_to_notebook(text, where=str(ipynb))
    problems = compare_cells(nb, back)
    if problems:
        raise SourceError(f"{ipynb}: the MyST text would not keep the notebook: " + "; ".join(problems[:5]))
    md = ipynb.with_suffix(".md")
    _write_atomic(md, text)
    if remove:
        ipynb.unlink()
    else:  # it is now the notebook made from the text: same bytes as materialise writes
        _write_atomic(ipynb, _notebook_bytes(back))
    return md, changed


def compare_cells(a: NotebookNode, b: NotebookNode) -> list[str]:
    """Differences that matter between two source notebooks: cell count, types, ids, sources, metadata
    (outputs and front ends' volatile metadata aside)."""
    volatile = {"execution", "ExecuteTime", "collapsed", "scrolled", "jupyter", "trusted"}
    out = []
    if len(a.cells) != len(b.cells):
        out.append(f"{len(a.cells)} cells against {len(b.cells)}")
    for i, (x, y) in enumerate(zip(a.cells, b.cells)):
        mx = {k: v for k, v in x.metadata.items() if k not in volatile}
        my = {k: v for k, v in y.metadata.items() if k not in volatile}
        for what, u, v in (("type", x.cell_type, y.cell_type), ("id", x.get("id", y.get("id")), y.get("id")),
                           ("source", x.source, y.source), ("metadata", mx, my)):
            if u != v:
                out.append(f"cell {i} ({x.get('id')}): {what} differs")
    for k in NB_META:
        if a.metadata.get(k) != b.metadata.get(k):
            out.append(f"notebook metadata {k} differs")
    return out
