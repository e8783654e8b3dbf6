"""Nothing silent, nothing lost (issue 14): infrastructure failures are "failed" with their reason, never "graded"
with 0; `--from` folders without timestamp.txt get no lateness unless told a time; OS litter, empty or unreadable
folders, renamed notebooks and another assignment's notebook are reported, never graded silently or lost; the
command line says what it did and exits 1 when a submission failed. Real nbgrader, sandboxed, on the demo."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from autograder.api import grade
from autograder.settings import REPO, Settings
from test_autograder_workspace import COURSE, SOLUTION, WRONG, cli

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]


@pytest.fixture()
def course(tmp_path) -> Path:
    """A throwaway copy of the demo course."""
    dest = tmp_path / "course"
    shutil.copytree(COURSE, dest)
    return dest


def _locked(gid: str, source: str):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": False, "grade_id": gid, "locked": True, "schema_version": 3,
                                 "solution": False}
    cell.pop("id", None)
    return cell


def _source(course: Path) -> Path:
    return course / "solutions" / "00-demo" / "demo.ipynb"


def _edit(path: Path, fn) -> None:
    nb = nbformat.read(path, as_version=4)
    fn(nb)
    nbformat.write(nb, path)


def _at(nb, gid: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def _answer(src: Path, dest: Path, **answers: str) -> Path:
    """A copy of notebook `src` with the answer cells named (grade id with '_' for '-') replaced."""
    nb = nbformat.read(src, as_version=4)
    for gid, code in answers.items():
        nb.cells[_at(nb, gid.replace("_", "-"))].source = code
    nbformat.write(nb, dest)
    return dest


def _status(ws: Path, course: Path = COURSE) -> dict[str, dict]:
    r = cli(ws, "status", "00-demo", "--json", course=course)
    assert r.returncode == 0, r.stdout + r.stderr
    return {x["student"]: x for x in json.loads(r.stdout)["00-demo"]}


# -- 1. failed, never silently graded ---------------------------------------------------------------------------
def test_broken_setup_cell_or_dead_kernel_fails_with_the_reason(course, tmp_path):
    """The instructor's set-up cell cannot import a module (week7 missing, say), or the kernel dies at start:
    the submission is "failed" with the cell and the error, not "graded" with whatever the tests gave."""
    good = _answer(_source(course), tmp_path / "good.ipynb")
    _edit(_source(course), lambda nb: setattr(nb.cells[_at(nb, "demo-imports")], "source",
                                              "import numpy as np\nimport week7_not_installed"))
    r = grade("00-demo", {"alice": good}, course_root=course)["alice"]
    assert r.status == "failed" and r.infrastructure, (r.status, r.flags)
    assert any("'demo-imports'" in f and "No module named 'week7_not_installed'" in f for f in r.flags), r.flags
    # a kernel that dies before it answers (here: an address-space limit too small for python to start)
    s = Settings()
    s.memory_bytes = 30 * 2**20
    r = grade("00-demo", {"bob": SOLUTION}, course_root=COURSE, settings=s)["bob"]
    assert r.status == "failed" and r.infrastructure and r.total == 0, (r.status, r.flags)
    assert any("could not be executed" in f and "Kernel died" in f for f in r.flags), r.flags


def test_instructor_cell_errors_after_student_code_are_blamed_by_the_rule(course, tmp_path):
    """Instructor cells after the answers: an error that comes from the student's code (a stub's
    NotImplementedError inside their function, a name their cells deleted or rebound) is graded as usual; one
    that uses only instructor names, or a missing module, is an infrastructure failure."""
    def given(nb):
        nb.cells.insert(_at(nb, "demo-add") + 1, _locked("demo-given-add", "ADD_EXAMPLE = add(1, 2)"))
        nb.cells.insert(_at(nb, "demo-squares") + 1,
                        _locked("demo-given-squares", "SQ_EXAMPLE = np.asarray(squares(3)).tolist()"))
    _edit(_source(course), given)
    src = _source(course)
    release = course / "exercises" / "00-demo" / "demo.ipynb"
    from autograder.api import generate

    generate("00-demo", course_root=course)
    subs = {
        "solution": src,
        "stubs": release,  # the unanswered release: add() raises NotImplementedError inside the student's cell
        "renamed_fn": _answer(src, tmp_path / "renamed_fn.ipynb",
                              demo_add="def plus(a, b):\n    return int(a) + int(b)"),
        "clobbers_np": _answer(src, tmp_path / "clobbers_np.ipynb",
                               demo_squares="np = None\ndef squares(n):\n    return [i * i for i in range(n)]"),
    }
    res = grade("00-demo", subs, course_root=course)
    assert res["solution"].status == "graded" and res["solution"].total == 5.0, res["solution"].flags
    for name in ("stubs", "renamed_fn", "clobbers_np"):
        assert res[name].status != "failed" and not res[name].infrastructure, (name, res[name].flags)
    assert res["stubs"].total == 0 and res["stubs"].errors["demo-given-add"].startswith("NotImplementedError")
    assert res["renamed_fn"].by_grade_id["demo-add-tests"] == (0.0, 2.0)
    assert "NameError: name 'add' is not defined" in res["renamed_fn"].errors["demo-given-add"]
    assert res["clobbers_np"].errors["demo-given-squares"].startswith("AttributeError")
    # the same place, but the error uses no name of the student's: the environment
    _edit(src, lambda nb: setattr(nb.cells[_at(nb, "demo-given-squares")], "source",
                                  "SIZES = np.arange(3)\nassert SIZES.tolist() == [0, 1, 2, 3], 'numpy is broken'"))
    _edit(src, lambda nb: setattr(nb.cells[_at(nb, "demo-given-add")], "source", "import week7_late_import"))
    generate("00-demo", course_root=course)
    res = grade("00-demo", {"solution": src, "stubs": release}, course_root=course)
    for name in ("solution", "stubs"):
        r = res[name]
        assert r.status == "failed" and r.infrastructure, (name, r.flags)
        assert any("'demo-given-add' raised ModuleNotFoundError" in f for f in r.flags), r.flags
        assert any("'demo-given-squares' raised AssertionError: numpy is broken" in f for f in r.flags), r.flags


def test_failed_submission_exits_1_and_is_graded_again_once_fixed(course, tmp_path):
    """grade-all and autograde exit 1 and say which submission failed and why; once the environment is fixed, the
    next plain autograde grades it again (no --force) and exits 0."""
    subs, ws = tmp_path / "subs", tmp_path / "ws"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / "demo.ipynb").write_bytes(SOLUTION.read_bytes())
    (subs / "alice" / "timestamp.txt").write_text("2026-12-01 09:00:00 UTC")
    original = _source(course).read_bytes()
    _edit(_source(course), lambda nb: setattr(nb.cells[_at(nb, "demo-imports")], "source",
                                              "import numpy as np\nimport week7_not_installed"))
    r = cli(ws, "grade-all", "00-demo", "--from", str(subs), course=course)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED alice" in r.stdout and "week7_not_installed" in r.stdout and "1 submission(s) failed" in r.stdout
    st = _status(ws, course)["alice"]
    assert st["status"] == "failed" and "demo-imports" in st["detail"]
    r = cli(ws, "autograde", "00-demo", course=course)  # autograde itself: still broken, so still not graded
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED alice" in r.stdout and "1 submission(s) failed: not graded (exit status 1)" in r.stdout, r.stdout
    _source(course).write_bytes(original)  # the instructor fixes the environment
    r = cli(ws, "autograde", "00-demo", course=course)
    assert r.returncode == 0 and "graded 1 submission(s): 1 clean" in r.stdout, r.stdout + r.stderr
    assert _status(ws, course)["alice"]["status"] == "graded"
    r = cli(ws, "autograde", "00-demo", course=course)  # now unchanged and graded: nothing to do
    assert r.returncode == 0, r.stdout + r.stderr
    assert ("nothing to grade: 1 submission(s) unchanged since their last grading (use --force to grade again)"
            in r.stdout), r.stdout


def test_generate_says_why_the_solution_fell_short(course):
    """`generate` names each lost grade id with its cell's first error line."""
    _edit(_source(course), lambda nb: setattr(
        nb.cells[_at(nb, "demo-add")], "source",
        "def add(a: int, b: int) -> int:\n    ### BEGIN SOLUTION\n    return int(a) - int(b)\n    ### END SOLUTION"))
    r = subprocess.run([sys.executable, "-m", "autograder", "--course-root", str(course), "--workspace",
                        str(course / "ws"), "generate", "00-demo"], cwd=REPO, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "NOT FULL MARKS" in r.stdout
    # the demo's visible assert names the case, the expected and the actual value (its first error line)
    assert "solution lost demo-add-tests (0/2): AssertionError: add(2, 3) = -1, expected 5" in r.stdout, r.stdout
    assert "solution lost demo-squares-tests" not in r.stdout


# -- 2. lateness only from a time someone gave ------------------------------------------------------------------
def test_import_without_timestamp_warns_and_records_no_lateness(tmp_path):
    subs, ws = tmp_path / "subs", tmp_path / "ws"
    (subs / "bob").mkdir(parents=True)
    (subs / "alice.ipynb").write_bytes(SOLUTION.read_bytes())
    (subs / "bob" / "demo.ipynb").write_bytes(WRONG.read_bytes())
    (subs / "carol").mkdir()
    (subs / "carol" / "demo.ipynb").write_bytes(SOLUTION.read_bytes())
    (subs / "carol" / "timestamp.txt").write_text("2026-12-01 18:00:00 UTC")
    r = cli(ws, "collect", "00-demo", "--from", str(subs))
    assert r.returncode == 0, r.stdout + r.stderr
    warn = ("no timestamp.txt: not checked for lateness; pass --submitted-at 'YYYY-mm-dd HH:MM:SS UTC' or "
            "--use-mtime to set one")
    assert f"alice: {warn}" in r.stdout and f"bob: {warn}" in r.stdout and "carol:" not in r.stdout, r.stdout
    sub = ws / "submitted"
    assert not (sub / "alice" / "00-demo" / "timestamp.txt").exists()
    assert (sub / "carol" / "00-demo" / "timestamp.txt").read_text() == "2026-12-01 18:00:00 UTC"
    # an explicit time for the entries without one (the folder's own timestamp.txt wins)
    r = cli(tmp_path / "ws2", "collect", "00-demo", "--from", str(subs), "--submitted-at", "2026-12-01 16:59:00 UTC")
    assert r.returncode == 0 and "no timestamp.txt" not in r.stdout, r.stdout + r.stderr
    assert (tmp_path / "ws2" / "submitted" / "bob" / "00-demo" / "timestamp.txt").read_text().startswith(
        "2026-12-01 16:59:00")
    assert (tmp_path / "ws2" / "submitted" / "carol" / "00-demo" / "timestamp.txt").read_text().startswith(
        "2026-12-01 18:00:00")
    # file times only when asked for
    import os

    os.utime(subs / "alice.ipynb", (1764604800, 1764604800))  # 2025-12-01 16:00:00 UTC
    r = cli(tmp_path / "ws3", "collect", "00-demo", "--from", str(subs), "--use-mtime")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "ws3" / "submitted" / "alice" / "00-demo" / "timestamp.txt").read_text().startswith(
        "2025-12-01 16:00:00")
    # a time that is not one: an error naming the format, before anything is imported or graded
    for args in (("autograde", "00-demo", "--duedate", "tomorrow"),
                 ("grade-all", "00-demo", "--from", str(subs), "--duedate", "17:00"),
                 ("collect", "00-demo", "--from", str(subs), "--submitted-at", "yesterday")):
        r = cli(tmp_path / "ws4", *args)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "expected a date and time as 'YYYY-mm-dd HH:MM:SS TZ', e.g. '2026-12-01 17:00:00 UTC'" in r.stderr
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "ws4" / "submitted").exists()


# -- 3. messy export folders ------------------------------------------------------------------------------------
def _other_assignment(course: Path) -> None:
    """A second assignment in the course, 01-other: the demo with its grade ids renamed."""
    nb = nbformat.read(_source(course), as_version=4)
    for c in nb.cells:
        m = c.metadata.get("nbgrader")
        if m:
            m["grade_id"] = m["grade_id"].replace("demo-", "other-")
    (course / "solutions" / "01-other").mkdir()
    nbformat.write(nb, course / "solutions" / "01-other" / "other.ipynb")


def test_messy_export_folder(course, tmp_path):
    _other_assignment(course)
    first, messy, ws = tmp_path / "first", tmp_path / "messy", tmp_path / "ws"
    for st in ("alice", "frank"):
        (first / st).mkdir(parents=True)
        (first / st / "demo.ipynb").write_bytes(SOLUTION.read_bytes())
        (first / st / "timestamp.txt").write_text("2026-12-01 10:00:00 UTC")
    r = cli(ws, "grade-all", "00-demo", "--from", str(first), course=course)
    assert r.returncode == 0 and "2 new" in r.stdout, r.stdout + r.stderr  # nothing failed: exit 0
    # the export a learning platform (and a Mac, and Windows) gives a week later
    (messy / "__MACOSX" / "bob").mkdir(parents=True)
    (messy / "__MACOSX" / "bob" / "._demo (1).ipynb").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    for junk in (".DS_Store", "Thumbs.db", "desktop.ini"):
        (messy / junk).write_bytes(b"\x00junk")
    (messy / "alice").mkdir()  # empty: must not replace her 5/5
    (messy / "alice" / ".DS_Store").write_bytes(b"\x00")
    (messy / "frank").mkdir()  # unreadable: a link to nowhere (as root nothing else is unreadable)
    (messy / "frank" / "demo.ipynb").symlink_to(tmp_path / "nowhere.ipynb")
    for st, name in (("bob", "demo (1).ipynb"), ("carol", "Demo.ipynb"), ("dave", "demo-2.ipynb")):
        (messy / st).mkdir()
        (messy / st / name).write_bytes(SOLUTION.read_bytes())
        (messy / st / ".DS_Store").write_bytes(b"\x00")
    (messy / "erin").mkdir()
    (messy / "erin" / "other.ipynb").write_bytes((course / "solutions" / "01-other" / "other.ipynb").read_bytes())
    (messy / "demo.ipynb").write_bytes(SOLUTION.read_bytes())  # the assignment's notebook, dropped at the top
    r = cli(ws, "grade-all", "00-demo", "--from", str(messy), "--submitted-at", "2026-12-01 11:00:00 UTC",
            course=course)
    out = r.stdout
    assert r.returncode == 1, out + r.stderr  # erin's submission failed
    summary = out.splitlines()[0]
    assert summary.startswith("00-demo: 4 new, 0 resubmitted, 0 unchanged"), summary
    assert "skipped 3:" in summary and "alice (empty folder; the earlier submission is kept (graded 5/5))" in summary
    assert ("frank (unreadable (demo.ipynb: No such file or directory); the earlier submission is kept (graded 5/5))"
            in summary), summary
    assert "demo.ipynb (the assignment's notebook itself" in summary
    assert "ignored OS litter: .DS_Store, Thumbs.db, __MACOSX, desktop.ini" in summary
    assert "bob: renamed: demo (1).ipynb -> demo.ipynb" in out and "carol: renamed: Demo.ipynb -> demo.ipynb" in out
    assert "dave: renamed: demo-2.ipynb -> demo.ipynb" in out
    assert "erin: other.ipynb is 01-other's notebook, not 00-demo's" in out
    assert sorted(p.name for p in (ws / "submitted").iterdir()) == ["alice", "bob", "carol", "dave", "erin", "frank"]
    st = _status(ws, course)
    assert st["alice"]["status"] == "graded" and st["alice"]["score"] == 5.0  # the earlier grade kept
    assert st["frank"]["status"] == "graded" and st["frank"]["score"] == 5.0
    for who, name in (("bob", "demo (1).ipynb"), ("carol", "Demo.ipynb"), ("dave", "demo-2.ipynb")):
        assert st[who]["status"] == "flagged" and st[who]["score"] == 5.0, st[who]
        assert st[who]["detail"] == f"renamed: {name} -> demo.ipynb", st[who]  # litter never flagged
    assert st["erin"]["status"] == "failed" and "other.ipynb is 01-other's notebook, not 00-demo's" in \
        st["erin"]["detail"] and "notebook missing" in st["erin"]["detail"]
    rows = {row["student"]: row for row in csv.DictReader(open(ws / "exports" / "grades.csv"))}
    assert float(rows["alice"]["score"]) == 5.0 and rows["alice"]["timestamp"].startswith("2026-12-01T10:00:00")
    # a second look at the same folder: nothing new; the failed one is not retried (the file is the problem)
    r = cli(ws, "autograde", "00-demo", course=course)
    assert r.returncode == 1 and "nothing to grade: 6 submission(s) unchanged" in r.stdout, r.stdout + r.stderr
    assert "FAILED erin" in r.stdout


def test_two_candidates_are_not_guessed(tmp_path):
    """Two near-miss notebooks: neither is graded, the flag says which and what to do."""
    from autograder.integrity import locate

    sub = tmp_path / "s"
    sub.mkdir()
    for name in ("demo (1).ipynb", "demo (2).ipynb"):
        (sub / name).write_bytes(SOLUTION.read_bytes())
    loc = locate(sub, {"demo": {"demo-add", "demo-add-tests"}})
    assert loc.found == {} and loc.notes == [
        "demo.ipynb: 2 notebooks could be it (demo (1).ipynb, demo (2).ipynb); none graded: keep only one"]
    (sub / "demo (2).ipynb").unlink()
    (sub / "notes").mkdir()
    (sub / "notes" / "Untitled.ipynb").write_text("{}")
    loc = locate(sub, {"demo": {"demo-add", "demo-add-tests"}})
    assert loc.found == {"demo": sub / "demo (1).ipynb"} and loc.extra == ["notes/Untitled.ipynb"]


# -- 4. the command line's words --------------------------------------------------------------------------------
def test_cli_texts_name_real_assignments_and_errors_stay_clear(tmp_path):
    have = {p.name for p in (REPO / "solutions").iterdir() if p.is_dir()}
    texts = []
    for args in ((), ("grade-all",), ("collect",), ("autograde",), ("generate",)):
        r = subprocess.run([sys.executable, "-m", "autograder", *args, "--help"], cwd=REPO, capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        texts.append(r.stdout)
    named = set(re.findall(r"\b\d\d-[a-z]+(?:-[a-z]+)*\b", "\n".join(texts)))
    assert named and named <= have, f"help names assignments that do not exist: {sorted(named - have)}"
    assert "--submitted-at" in texts[1] and "--use-mtime" in texts[1]
    ws, subs = tmp_path / "ws", tmp_path / "subs"
    subs.mkdir()
    (subs / "alice.ipynb").write_bytes(SOLUTION.read_bytes())
    assert cli(ws, "collect", "00-demo", "--from", str(subs)).returncode == 0
    r = cli(ws, "autograde", "00-demo", "--student", "nobody")
    assert r.returncode == 2 and "no submission of 00-demo from nobody" in r.stderr and "submitted: alice" in \
        r.stderr, r.stderr
    r = cli(ws, "autograde", "03-sparse-attention")
    assert r.returncode == 2 and "no assignment '03-sparse-attention'" in r.stderr + r.stdout
    r = cli(tmp_path / "empty", "autograde", "00-demo")
    assert r.returncode == 0 and "nothing to grade: no submission in" in r.stdout, r.stdout + r.stderr
