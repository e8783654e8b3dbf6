"""What a student sees in every generated exercise: every written question, and points that add up.

For every assignment in solutions/ and its committed student version in exercises/:

* each manually graded answer cell has, right before it, a locked markdown cell holding its question (nbgrader's
  generate step deletes solution cells' text, so a question written inside the answer cell never reaches the
  student);
* each part header ``## Part N: ... (X points ...)`` states the sum of the points of the graded cells up to the next
  ``## `` header, and a part that names no points holds none;
* the introduction states the total;
* an answer cell holds only its solution region and mark scheme in the solution, and only the stub in the student
  version;
* every written answer has a mark scheme (``=== BEGIN/END MARK SCHEME ===``), which the autograder puts before the
  answer in the notebooks graders open in the formgrader (feedback removes it).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from autograder import markers
from autograder.source import source_files, source_notebooks

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir() and source_files(p))
POINTS = re.compile(r"\((\d+(?:\.\d+)?) points?\b")
PART = re.compile(r"^##\s+Part\b.*$", re.M)


def _nb(kind: str, assignment: str) -> list[nbformat.NotebookNode]:
    if kind == "solutions":
        nbs = list(source_notebooks(ROOT / kind / assignment).values())
    else:
        nbs = [nbformat.read(p, as_version=4) for p in sorted((ROOT / kind / assignment).glob("*.ipynb"))]
    assert nbs, f"{kind}/{assignment} holds no notebook"
    return nbs


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _is_manual(cell) -> bool:
    m = _meta(cell)
    return bool(m.get("grade") and m.get("solution"))


def _words(text: str) -> str:
    """The text of a markdown cell without headers and markup: what a student reads as the question."""
    body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    return re.sub(r"[\s*_`>#-]+", " ", body).strip()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_written_answer_has_its_question_before_it(assignment):
    for nb in _nb("exercises", assignment):
        cells = nb.cells
        for i, c in enumerate(cells):
            if not _is_manual(c):
                continue
            gid = _meta(c).get("grade_id")
            assert i > 0, f"{assignment}: answer cell {gid} is the first cell"
            q = cells[i - 1]
            qm = _meta(q)
            assert q.cell_type == "markdown", f"{assignment}: the cell before answer {gid} is not its question"
            assert qm.get("locked") and not qm.get("solution") and not qm.get("grade"), (
                f"{assignment}: the question before answer {gid} must be a locked, ungraded markdown cell "
                f"(metadata: {qm})")
            words = _words(q.source)
            assert len(words) >= 20 and "?" in q.source or len(words) >= 40, (
                f"{assignment}: the cell before answer {gid} holds no question a student can read: {q.source!r}")


STUB = "YOUR ANSWER HERE"


def _outside_regions(source: str) -> list[str]:
    """The non-empty lines of a cell that lie outside its solution and mark-scheme regions (stub lines aside)."""
    return [st for st in markers.outside(source, markers.SOLUTION, markers.MARK_SCHEME) if st != STUB]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_answer_cells_hold_only_the_answer(assignment):
    """In the solution an answer cell holds only its solution region and mark scheme (a question written there
    would be deleted by nbgrader); in the student version it is the bare stub."""
    for kind in ("solutions", "exercises"):
        for nb in _nb(kind, assignment):
            for c in nb.cells:
                if not _is_manual(c):
                    continue
                gid = _meta(c).get("grade_id")
                if kind == "exercises":
                    assert c.source.strip() == STUB, (
                        f"{kind}/{assignment}: answer cell {gid} should show only {STUB!r}, it shows {c.source!r}")
                else:
                    extra = _outside_regions(c.source)
                    assert not extra, (f"{kind}/{assignment}: answer cell {gid} holds text outside its solution and "
                                       f"mark-scheme regions (put questions in the locked cell before it): {extra[:2]}")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_part_headers_state_the_points_of_their_cells(assignment):
    for kind in ("solutions", "exercises"):
        for nb in _nb(kind, assignment):
            parts: list[tuple[str, float | None, float]] = []  # (header, stated, counted)
            total = 0.0
            for c in nb.cells:
                if c.cell_type == "markdown":
                    for line in c.source.splitlines():
                        if line.startswith("## "):
                            m = POINTS.search(line)
                            parts.append((line.strip(), float(m.group(1)) if m else None, 0.0))
                            break
                pts = float(_meta(c).get("points", 0) or 0) if _meta(c).get("grade") else 0.0
                total += pts
                if pts and parts:
                    h, stated, counted = parts[-1]
                    parts[-1] = (h, stated, counted + pts)
                elif pts:
                    raise AssertionError(f"{kind}/{assignment}: a graded cell ({pts} points) before any ## header")
            assert any(PART.match(h) for h, _, _ in parts), f"{kind}/{assignment}: no '## Part' headers"
            for h, stated, counted in parts:
                if stated is None:
                    assert counted == 0, f"{kind}/{assignment}: '{h}' states no points but its cells hold {counted:g}"
                else:
                    assert stated == counted, f"{kind}/{assignment}: '{h}' states {stated:g} points, its cells hold {counted:g}"
            intro = "\n".join(c.source for c in nb.cells[:3] if c.cell_type == "markdown")
            stated_totals = [float(x) for x in re.findall(r"(\d+(?:\.\d+)?) points", intro)]
            assert total in stated_totals, (
                f"{kind}/{assignment}: the introduction should state the total, {total:g} points "
                f"(it states {stated_totals or 'none'})")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_written_answer_has_a_mark_scheme_for_graders(assignment):
    """The formgrader shows graders the mark scheme region of each written answer (autograder.feedback.add_rubric);
    a model answer kept in a solution region instead is deleted from every notebook graders see."""
    for nb in _nb("solutions", assignment):
        for c in nb.cells:
            if _is_manual(c) and c.cell_type == "markdown":
                src = c.source
                assert "=== BEGIN MARK SCHEME ===" in src and "=== END MARK SCHEME ===" in src, (
                    f"solutions/{assignment}: written answer {_meta(c).get('grade_id')} has no mark scheme")
                body = src.split("=== BEGIN MARK SCHEME ===", 1)[1].split("=== END MARK SCHEME ===", 1)[0]
                assert len(body.split()) >= 15, f"{_meta(c).get('grade_id')}: mark scheme too short to grade by"
