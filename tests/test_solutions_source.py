"""solutions/NN-slug/<name>.md (MyST text) are the one source of each exercise (autograder/source.py).

The text keeps every cell's nbgrader metadata, source and id; the notebook made from it gives, through nbgrader,
exactly the committed student version; a generated notebook someone edited is never overwritten; `to-myst`
converts a notebook and refuses what it cannot read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder import source as S
from autograder.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TEXT_SOURCED = sorted(p.name for p in (ROOT / "solutions").iterdir()
                      if p.is_dir() and any(f.suffix == ".md" for f in S.source_files(p)))


def _nbgrader_meta(nb) -> list:
    return [(c.get("id"), c.cell_type, c.metadata.get("nbgrader")) for c in nb.cells]


def test_the_exercises_are_sourced_from_text_and_git_ignores_their_notebooks():
    """Check that the shipped exercises have a MyST source and that git ignores the notebooks made from it."""
    assert {"01-scale-comparison", "02-few-shot", "03-prompt-engineering", "04-sparse-attention",
            "05-model-parallelism"} <= set(TEXT_SOURCED), TEXT_SOURCED
    for a in TEXT_SOURCED:
        for md in S.source_files(ROOT / "solutions" / a):
            r = subprocess.run(["git", "check-ignore", "-q", str(md.with_suffix(".ipynb"))], cwd=ROOT)
            assert r.returncode == 0, f"{md.with_suffix('.ipynb')} is not ignored by git: it is made from {md.name}"
            tracked = subprocess.run(["git", "ls-files", "--error-unmatch", str(md.with_suffix(".ipynb"))],
                                     cwd=ROOT, capture_output=True)
            assert tracked.returncode != 0, f"{md.with_suffix('.ipynb')} is committed; only {md.name} should be"


@pytest.mark.parametrize("assignment", TEXT_SOURCED)
def test_round_trip_keeps_every_cell(assignment):
    """Check that text -> notebook -> text is the identity, and that the notebook read back from the text keeps
    each cell's id, type, source and nbgrader metadata (grade ids, points, locks)."""
    for md in S.source_files(ROOT / "solutions" / assignment):
        text = md.read_text(encoding="utf-8")
        nb = S.read_source(md)
        assert S.notebook_to_text(nb) == text, f"{md}: not in the canonical form; run to-myst on its notebook"
        back = S.text_to_notebook(S.notebook_to_text(nb))
        assert S.compare_cells(nb, back) == []
        assert _nbgrader_meta(back) == _nbgrader_meta(nb)
        assert any(c.metadata.get("nbgrader", {}).get("grade") for c in nb.cells), f"{md}: no graded cell read"
        assert len({c.id for c in nb.cells}) == len(nb.cells)


@pytest.mark.nbgrader
@pytest.mark.parametrize("assignment", TEXT_SOURCED)
def test_regenerating_from_the_text_changes_no_committed_byte(assignment, tmp_path):
    """Check that nbgrader's generate_assignment on the notebook made from the .md writes, byte for byte, the
    committed exercises/<assignment>/ (and no .md: the source never reaches students)."""
    from autograder.nbg import generate_release

    out = generate_release(ROOT / "solutions", assignment, tmp_path, Settings())
    fresh = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    committed_dir = ROOT / "exercises" / assignment
    committed = {p.relative_to(committed_dir).as_posix(): p.read_bytes() for p in committed_dir.rglob("*")
                 if p.is_file()}
    assert not [n for n in fresh if n.endswith(".md")], sorted(fresh)
    assert sorted(fresh) == sorted(committed)
    changed = [n for n in fresh if fresh[n] != committed[n]]
    assert not changed, f"regenerating {assignment} changes {changed}: run `python -m autograder generate`"


def _demo_nb():
    cells = [new_markdown_cell("# Demo\n\nIntro."), new_code_cell("import math"),
             new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"),
             new_code_cell("assert f(2) == 4\n### BEGIN HIDDEN TESTS\nassert f(3) == 6\n### END HIDDEN TESTS")]
    cells[0].metadata["nbgrader"] = {"grade": False, "grade_id": "intro", "locked": True, "schema_version": 3,
                                     "solution": False}
    cells[2].metadata["nbgrader"] = {"grade": False, "grade_id": "f", "locked": False, "schema_version": 3,
                                     "solution": True}
    cells[3].metadata["nbgrader"] = {"grade": True, "grade_id": "f-tests", "locked": True, "points": 2,
                                     "schema_version": 3, "solution": False}
    for i, c in enumerate(cells):
        c.id = ["intro-cell", "c001", "answer", "tests"][i]
    return new_notebook(cells=cells, metadata={"kernelspec": {"display_name": "Python 3", "language": "python",
                                                              "name": "python3"}})


def _cli(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def test_to_myst_then_materialise_gives_the_same_notebook(tmp_path):
    """Check that `to-myst` writes a .md that reads back to the notebook (ids other than c000.. kept in the text,
    default ones not), and that the notebook materialise then makes from it is unchanged."""
    nbfile = tmp_path / "demo.ipynb"
    nbformat.write(_demo_nb(), nbfile)
    r = _cli("to-myst", str(nbfile))
    assert r.returncode == 0, r.stdout + r.stderr
    md = tmp_path / "demo.md"
    text = md.read_text()
    assert '"id": "intro-cell"' in text and "id: answer" in text and "c001" not in text, text
    assert "grade_id: f-tests" in text and "points: 2" in text
    assert S.compare_cells(_demo_nb(), S.read_source(md)) == []
    before = nbfile.read_bytes()
    assert S.materialise(tmp_path) == [nbfile]
    assert nbfile.read_bytes() == before
    assert S.source_files(tmp_path) == [md] and S.notebook_ids(tmp_path) == ["demo"]


def test_to_myst_refuses_what_is_not_a_notebook(tmp_path):
    """Check that a broken notebook gets a message naming it, exit 2, and no .md written."""
    bad = tmp_path / "broken.ipynb"
    bad.write_text('{"cells": [')
    r = _cli("to-myst", str(bad))
    assert r.returncode == 2 and "broken.ipynb" in r.stderr and "not a readable notebook" in r.stderr, r.stderr
    assert not (tmp_path / "broken.md").exists()


def test_an_edited_generated_notebook_is_never_overwritten(tmp_path):
    """Check that materialise refuses to overwrite a generated notebook whose cells someone changed after it was
    made (the error says how to keep the edits), overwrites one that only gained outputs, and one older than the
    .md it came from."""
    nbfile = tmp_path / "demo.ipynb"
    nbformat.write(_demo_nb(), nbfile)
    S.to_myst(nbfile)
    md = tmp_path / "demo.md"
    os.utime(md, (1_000_000, 1_000_000))
    # only outputs added (the notebook was run in Jupyter): regenerated, nothing lost
    nb = nbformat.read(nbfile, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="hi\n")]
    nbformat.write(nb, nbfile)
    S.materialise(tmp_path)
    assert nbformat.read(nbfile, as_version=4).cells[1].outputs == []
    # a cell edited after the .md was written: kept, and a clear error
    nb.cells[2].source = nb.cells[2].source.replace("2 * x", "x + x")
    nbformat.write(nb, nbfile)
    edited = nbfile.read_bytes()
    with pytest.raises(S.SourceError, match=r"changed after it was made from demo\.md.*to-myst"):
        S.materialise(tmp_path)
    assert nbfile.read_bytes() == edited
    # the .md edited later than the notebook: the .md wins
    md.write_text(md.read_text().replace("2 * x", "3 * x"))
    os.utime(nbfile, (2_000_000, 2_000_000))
    os.utime(md, (3_000_000, 3_000_000))
    S.materialise(tmp_path)
    assert "3 * x" in nbformat.read(nbfile, as_version=4).cells[2].source


def test_bad_text_is_named(tmp_path):
    """Check that two cells with one id, and a missing notebook, fail with messages that say where."""
    text = S.notebook_to_text(_demo_nb()).replace("id: tests", "id: answer")
    with pytest.raises(S.SourceError, match=r"cells 2 and 3 have the same id 'answer'"):
        S.text_to_notebook(text, where="x.md")
    (tmp_path / "solutions" / "07-x").mkdir(parents=True)
    (tmp_path / "solutions" / "07-x" / "a.md").write_text(S.notebook_to_text(_demo_nb()))
    with pytest.raises(FileNotFoundError, match=r"no notebook 'b' .*have: a"):
        S.load_solution("07-x", "b.ipynb", course_root=tmp_path)
    assert S.load_solution("07-x", course_root=tmp_path).cells[2].id == "answer"


def test_a_plain_markdown_file_is_not_a_source(tmp_path):
    """Check that a README.md beside an .ipynb source leaves the .ipynb the source (no front matter: not MyST)."""
    (tmp_path / "README.md").write_text("# notes for graders\n")
    nbformat.write(_demo_nb(), tmp_path / "demo.ipynb")
    assert S.source_files(tmp_path) == [tmp_path / "demo.ipynb"]
    with tempfile.TemporaryDirectory() as d:
        assert S.source_files(Path(d)) == []
    assert json.loads((tmp_path / "demo.ipynb").read_text())["cells"][0]["id"] == "intro-cell"
