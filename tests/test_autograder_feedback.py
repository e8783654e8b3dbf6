"""The instructor's week on the demo assignment (real nbgrader, sandboxed): release, submissions through nbgrader's
exchange and from a folder, autograde, hand grading into the ONE gradebook the formgrader also uses, feedback that
teaches (visible failures with their message, hidden failures named by part, no hidden test, output, mark scheme
or solution), feedback offline in chromium, release of feedback, export with the hand scores."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import feedback as fb

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "autograder"
COURSE = FIX / "course"
SOLUTION = COURSE / "solutions" / "00-demo" / "demo.ipynb"
RELEASE = COURSE / "exercises" / "00-demo" / "demo.ipynb"
WRONG_ADD = FIX / "00-demo-fixtures" / "wrong_add_type.ipynb"
NO_VALUEERROR = FIX / "00-demo-fixtures" / "no_valueerror.ipynb"
COURSE_ID = "w7-test-course"
CHROMIUM = os.environ.get("W7_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")

# text only instructors have: hidden tests (source and their assertion message), the mark scheme, the solution
SECRETS = ["10**12", "squares(-1) must raise ValueError", "HIDDEN TESTS", "MARK SCHEME", "MARK_SCHEME",
           "returned objects can override", "n must be >= 0"]

# a hostile student: `add` prints what the tests call it with (hidden inputs too), a last cell prints every cell
# source IPython keeps in its line cache (the hidden tests included)
EVE_ADD = "def add(a, b):\n    print('add called with', a, b)\n    return int(a) + int(b)"
EVE_SQUARES = ("def squares(n):\n    if n < 0:\n        raise ValueError(n)\n"
               "    return np.arange(n, dtype=np.int64) ** 2")
EVE_LAST = ("import linecache\nprint('\\n'.join(''.join(linecache.getlines(k)) for k in list(linecache.cache)))")


def cli(ws: Path, *args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "autograder", "--workspace", str(ws), "--course-root", str(COURSE), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def answered(src: Path, text: str | None, **code: str) -> nbformat.NotebookNode:
    nb = nbformat.read(src, as_version=4)
    for c in nb.cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "demo-written" and text is not None:
            c.source = text
        if gid in code:
            c.source = code[gid]
    return nb


def submit_through_exchange(student: str, nb: nbformat.NotebookNode, tmp: Path, env: dict) -> None:
    """What JupyterLab's Assignments tab does for a student: nbgrader submit into the exchange's inbound."""
    home = tmp / f"home-{student}"
    (home / "00-demo").mkdir(parents=True)
    nbformat.write(nb, home / "00-demo" / "demo.ipynb")
    r = subprocess.run([sys.executable, "-m", "nbgrader", "submit", "00-demo", "--student", student,
                        f"--CourseDirectory.course_id={COURSE_ID}", f"--Exchange.root={env['W7_EXCHANGE']}",
                        f"--Exchange.cache={home / '.cache'}"], cwd=home, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def rows(ws: Path) -> dict[str, dict]:
    return {r["student"]: r for r in csv.DictReader(open(ws / "exports" / "grades.csv"))}


def body_text(page: str) -> str:
    """The page's body without its scripts and styles (the inlined plotly.js holds words like AssertionError)."""
    body = page.split("<body", 1)[-1]
    return re.sub(r"<(script|style)[^>]*>.*?</\1>", "", body, flags=re.S)


def html_of(ws: Path, student: str) -> str:
    return (ws / "feedback" / student / "00-demo" / "demo.html").read_text()


@pytest.fixture(scope="module")
def week(tmp_path_factory) -> dict:
    """One instructor week; every stage's output and the files a test needs are kept in the returned dict."""
    tmp = tmp_path_factory.mktemp("week")
    ws, folder = tmp / "ws", tmp / "folder"
    env = {**os.environ, "W7_EXCHANGE": str(tmp / "exchange"), "W7_COURSE_ID": COURSE_ID}
    out: dict = {"ws": ws, "env": env}
    r = cli(ws, "release", "00-demo", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    submit_through_exchange("alice", answered(SOLUTION, "Returned objects can override `__eq__`, so `==` lies."),
                            tmp, env)
    submit_through_exchange("bob", answered(WRONG_ADD, "Objects may be fake."), tmp, env)
    folder.mkdir()
    nbformat.write(answered(NO_VALUEERROR, "Because of `__eq__`."), folder / "carol.ipynb")
    eve = answered(RELEASE, None, **{"demo-add": EVE_ADD, "demo-squares": EVE_SQUARES})
    eve.cells.append(nbformat.v4.new_code_cell(EVE_LAST))
    eve.cells[-1].pop("id", None)
    nbformat.write(eve, folder / "eve.ipynb")
    for args in (("collect", "00-demo"), ("collect", "00-demo", "--from", str(folder)),
                 ("autograde", "00-demo", "--workers", "2")):
        r = cli(ws, *args, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
    out["autograded_bob"] = nbformat.read(ws / "autograded" / "bob" / "00-demo" / "demo.ipynb", as_version=4)
    out["export_before"] = cli(ws, "export", env=env)
    out["csv_before"] = rows(ws)
    out["release_before"] = cli(ws, "feedback", "00-demo", "--release", env=env)
    out["html_before"] = {st: html_of(ws, st) for st in ("alice", "bob", "carol", "eve")}
    # hand grading, as the formgrader does it
    out["grade_errors"] = [cli(ws, "grade-manual", "00-demo", "--student", "bob", "--grade-id", g, "--score", x,
                               env=env) for g, x in (("demo-written", "3"), ("demo-add-tests", "1"),
                                                     ("no-such-cell", "1"))]
    for st, score, comment in (("alice", "1", "Right: `__eq__` can be overridden."),
                               ("bob", "0.5", "Half a point: say *how* a fake object fools `==`."),
                               ("carol", "1", "Good.")):
        r = cli(ws, "grade-manual", "00-demo", "--student", st, "--grade-id", "demo-written", "--score", score,
                "--comment", comment, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        out.setdefault("graded", []).append(r.stdout)
    out["export_after"] = cli(ws, "export", env=env)
    out["csv_after"] = rows(ws)
    out["release_after"] = cli(ws, "feedback", "00-demo", "--release", env=env)
    out["html_after"] = {st: html_of(ws, st) for st in ("alice", "bob", "carol", "eve")}
    # regrading keeps a hand grade whose answer did not change; a resubmitted answer needs grading again
    nbformat.write(answered(NO_VALUEERROR, "Because `__eq__` can return True for anything."), folder / "carol.ipynb")
    for args in (("collect", "00-demo", "--from", str(folder)), ("autograde", "00-demo"),
                 ("autograde", "00-demo", "--force", "--student", "alice")):
        r = cli(ws, *args, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
    r = cli(ws, "export", env=env)
    out["export_resubmitted"], out["csv_resubmitted"] = r, rows(ws)
    return out


# -- one gradebook ----------------------------------------------------------------------------------------------
def test_the_formgrader_reads_the_gradebook_the_command_line_writes(week, tmp_path):
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    ws = week["ws"]
    cfg_file = ws / "nbgrader_config.py"
    cfg = PyFileConfigLoader(str(cfg_file)).load_config()
    assert cfg.CourseDirectory.root == str(ws.resolve())
    assert cfg.CourseDirectory.course_id == COURSE_ID
    assert cfg.CourseDirectory.source_directory == str((COURSE / "solutions").resolve())
    assert cfg.CourseDirectory.release_directory == str((COURSE / "exercises").resolve())
    assert "*.md" in cfg.CourseDirectory.ignore  # the MyST sources of solutions/ never go into a release
    assert cfg.CourseDirectory.db_url == f"sqlite:///{ws.resolve()}/gradebook.db"
    assert cfg.Exchange.root == week["env"]["W7_EXCHANGE"]
    # the two lines formgrader-config prints, as an instructor's ~/.jupyter/nbgrader_config.py
    r = cli(ws, "formgrader-config", env=week["env"])
    assert r.returncode == 0 and str(cfg_file) in r.stdout, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith(("c = get_config()", "load_subconfig("))]
    assert len(lines) == 2
    user = tmp_path / "nbgrader_config.py"
    user.write_text("\n".join(lines) + "\n")
    ucfg = PyFileConfigLoader(str(user)).load_config()
    assert ucfg.CourseDirectory.db_url == cfg.CourseDirectory.db_url
    # nbgrader's own API, which the formgrader's pages call, started with that config: the command line's grades
    api = NbGraderAPI(CourseDirectory(config=ucfg), config=ucfg)
    subs = {x["student"]: x for x in api.get_submissions("00-demo")}
    assert set(subs) == {"alice", "bob", "carol", "eve"}
    assert subs["alice"]["score"] == pytest.approx(6.0)  # 5 autograded + 1 by hand (grade-manual)
    nb = {x["student"]: x for x in api.get_notebook_submissions("00-demo", "demo")}
    assert nb["bob"]["score"] == pytest.approx(3.5)
    # the formgrader's own Generate Feedback button would render the hidden tests and mark schemes: it refuses,
    # naming the course's feedback command, and leaves the course's feedback as it was
    before = html_of(ws, "bob")
    r = api.generate_feedback("00-demo", "bob")
    assert not r["success"] and "python -m autograder feedback" in r.get("log", "") + r.get("error", ""), r
    assert html_of(ws, "bob") == before
    assert not any(x in before for x in ("BEGIN HIDDEN TESTS", "MARK SCHEME"))


# -- manual grading and export ------------------------------------------------------------------------------------
def test_export_reports_auto_manual_total_and_what_needs_hand_grading(week):
    before, after = week["csv_before"], week["csv_after"]
    assert "3 submissions still need hand grading" in week["export_before"].stdout, week["export_before"].stdout
    for st in ("alice", "bob", "carol"):
        assert st in week["export_before"].stdout.split("hand grading:")[1]
        assert before[st]["to_grade_by_hand"] == "demo/demo-written"
    assert before["eve"]["to_grade_by_hand"] == ""  # answer left as released: nbgrader gives 0, nothing to grade
    assert "0 submissions still need hand grading" in week["export_after"].stdout
    want = {"alice": (5.0, 1.0), "bob": (3.0, 0.5), "carol": (2.0, 1.0), "eve": (5.0, 0.0)}
    for st, (auto, manual) in want.items():
        assert float(after[st]["autograded_score"]) == pytest.approx(auto), (st, after[st])
        assert float(after[st]["manual_score"]) == pytest.approx(manual), (st, after[st])
        assert float(after[st]["score"]) == pytest.approx(auto + manual), (st, after[st])
        assert float(after[st]["max_score"]) == pytest.approx(6.0)
        assert after[st]["to_grade_by_hand"] == ""
    assert "demo/demo-written: 0.5 / 1" in week["graded"][1]
    # the gradebook holds what the formgrader would have written: manual_score and the comment
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{week['ws'] / 'gradebook.db'}", COURSE_ID) as gb:
        g = gb.find_grade("demo-written", "demo", "00-demo", "bob")
        c = gb.find_comment("demo-written", "demo", "00-demo", "bob")
        assert (g.manual_score, g.needs_manual_grade) == (0.5, False)
        assert c.manual_comment == "Half a point: say *how* a fake object fools `==`."


def test_grade_manual_refuses_what_it_cannot_record(week):
    too_much, test_cell, unknown = week["grade_errors"]
    assert too_much.returncode == 2 and "outside 0 .. 1" in too_much.stderr, too_much.stderr
    assert test_cell.returncode == 2 and "autograded test cell" in test_cell.stderr
    assert unknown.returncode == 2 and "demo-written (1 point)" in unknown.stderr, unknown.stderr


def test_regrading_keeps_hand_grades_a_changed_answer_needs_grading_again(week):
    r, rows_ = week["export_resubmitted"], week["csv_resubmitted"]
    assert "1 submission still needs hand grading: carol 00-demo (demo/demo-written)" in r.stdout, r.stdout
    assert rows_["carol"]["manual_score"] in ("0", "0.0") and rows_["carol"]["to_grade_by_hand"] == "demo/demo-written"
    assert float(rows_["alice"]["manual_score"]) == 1.0 and rows_["alice"]["to_grade_by_hand"] == ""
    assert float(rows_["alice"]["score"]) == 6.0


# -- rubric -------------------------------------------------------------------------------------------------------
def test_graders_see_the_mark_scheme_students_never_do(week):
    cells = week["autograded_bob"].cells
    i = next(i for i, c in enumerate(cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "demo-written")
    rubric = cells[i - 1]
    assert rubric.cell_type == "markdown" and rubric.metadata.get("w7_rubric") == "demo-written"
    assert "returned objects can override `__eq__`" in rubric.source and "graders only" in rubric.source
    assert "nbgrader" not in rubric.metadata  # not a graded cell: the formgrader shows it as text
    for stage in ("html_before", "html_after"):
        for st, page in week[stage].items():
            for s in SECRETS:
                assert s not in page, f"{stage} {st}: {s!r} in the feedback"
            assert "graders only" not in page


# -- feedback that teaches ----------------------------------------------------------------------------------------
def test_feedback_says_passed_failed_and_why_without_hidden_tests(week):
    bob = week["html_after"]["bob"]
    # a visible assertion failed: its line and the error
    assert "<b>Failed</b> (0.0 / 2.0 points) at line 4: <code>assert type(add(2, 3)) is int, f" in bob
    assert "AssertionError: add(2, 3) returned a str, expected int" in bob
    assert "<b>Passed</b> (3.0 / 3.0 points)" in bob
    carol = week["html_after"]["carol"]
    # the visible tests pass, a hidden one fails: the part is named, nothing else
    assert ("hidden tests of <code>demo-squares-tests</code> (Part 2: squares (3 points)) failed" in carol)
    assert "AssertionError" not in body_text(carol) and "Traceback" not in body_text(carol)
    assert "AssertionError" in body_text(bob)  # the check can fail
    # the hostile student's output: no hidden input, no hidden source, and the grader's comments reach students
    eve = week["html_after"]["eve"]
    assert "add called with 2 3" not in eve and "add called with -7 7" not in eve and "1000000000000" not in eve
    assert fb.REMOVED in eve
    assert "Half a point: say <em>how</em> a fake object fools <code>==</code>." in bob
    assert "Score: 0.5 / 1.0" in bob


# a student function that reads the source of the test cell calling it (IPython's line cache, `inspect`) and prints
# it from the test cell and, stashed, from the student's next answer cell and a last cell of their own
FRED_ADD = """_seen = []
def _leak():
    import inspect, linecache
    caller = inspect.currentframe().f_back.f_back
    src = ''.join(linecache.getlines(caller.f_code.co_filename))
    try:
        src += inspect.getsource(caller)
    except Exception:
        pass
    if src not in _seen:
        _seen.append(src)
    print('TEST CELL SOURCE:', src)
def add(a, b):
    _leak()
    return int(a) + int(b)"""
FRED_SQUARES = ("print('STASHED:', *_seen, sep='\\n')\ndef squares(n):\n    _leak()\n    if n < 0:\n"
                "        raise ValueError(n)\n    return np.arange(n, dtype=np.int64) ** 2")
FRED_LAST = "print('STASHED AGAIN:', *_seen, sep='\\n')"


def hidden_lines(nb_path: Path) -> list[str]:
    """The lines of every BEGIN/END HIDDEN TESTS region of the solution's test cells (stripped, non-empty)."""
    out = []
    for c in nbformat.read(nb_path, as_version=4).cells:
        inside = False
        for line in c.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and line.strip():
                out.append(line.strip())
    return out


def test_feedback_never_shows_a_test_cell_source_a_student_function_reads_and_prints(tmp_path):
    import html

    ws, folder = tmp_path / "ws", tmp_path / "folder"
    folder.mkdir()
    fred = answered(RELEASE, None, **{"demo-add": FRED_ADD, "demo-squares": FRED_SQUARES})
    fred.cells.append(nbformat.v4.new_code_cell(FRED_LAST))
    fred.cells[-1].pop("id", None)
    nbformat.write(fred, folder / "fred.ipynb")
    for args in (("collect", "00-demo", "--from", str(folder)), ("autograde", "00-demo"), ("feedback", "00-demo")):
        r = cli(ws, *args)
        assert r.returncode == 0, r.stdout + r.stderr
    # the attack worked in the grading kernel: the autograded notebook holds the hidden lines fred printed
    graded = nbformat.read(ws / "autograded" / "fred" / "00-demo" / "demo.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in graded.cells if c.cell_type == "code" for o in c.get("outputs", []))
    secret = hidden_lines(SOLUTION)
    assert len(secret) >= 4 and all(line in printed for line in secret), (secret, printed[:2000])
    page = html_of(ws, "fred")
    for line in secret:
        assert line not in page and html.escape(line) not in page and html.escape(line, quote=False) not in page, line
    assert "TEST CELL SOURCE: # visible tests" not in page  # the test cell's own output is never shown
    assert fb.REMOVED in page  # the stashed copies printed from fred's own cells were replaced by the note


def test_feedback_before_hand_grading_says_not_graded_yet(week):
    bob = week["html_before"]["bob"]
    assert "not graded yet" in bob and "written answers not graded yet (1)" in bob
    assert "Score: 0.0 / 1.0" not in bob
    assert "not graded yet" not in week["html_after"]["bob"]


def test_feedback_release_exchange_and_folder_submissions(week):
    from nbgrader.utils import notebook_hash

    before, after = week["release_before"], week["release_after"]
    assert before.returncode == 0 and after.returncode == 0, before.stderr + after.stderr
    assert "NOT released, answers still to grade by hand" in before.stdout and "alice" in before.stdout
    assert "came from a folder, not the exchange: hand these files to the students" in after.stdout
    assert str(week["ws"] / "feedback" / "carol" / "00-demo" / "demo.html") in after.stdout
    assert "feedback released to the exchange for 2 student(s): alice, bob" in after.stdout
    outbound = Path(week["env"]["W7_EXCHANGE"]) / COURSE_ID / "feedback"
    for st in ("alice", "bob"):
        secret = (week["ws"] / "submitted" / st / "00-demo" / "submission_secret.txt").read_text()
        page = outbound / f"{notebook_hash(secret=secret, notebook_id='demo')}.html"
        assert page.read_text() == week["html_after"][st]


def test_feedback_html_renders_figures_and_math_offline(week, artifacts):
    page = week["html_after"]["bob"]
    assert not fb.external_scripts(page), fb.external_scripts(page)
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `apt-get install -y chromium` or set W7_CHROMIUM")
    from playwright.sync_api import sync_playwright

    asked: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            ctx = browser.new_context(viewport={"width": 1100, "height": 900}, offline=True)
            tab = ctx.new_page()
            tab.route("**/*", lambda r: (asked.append(r.request.url), r.abort())
                      if not r.request.url.startswith(("file:", "data:")) else r.continue_())
            tab.on("pageerror", lambda e: errors.append(str(e)[:200]))
            tab.goto((week["ws"] / "feedback" / "bob" / "00-demo" / "demo.html").as_uri(), wait_until="load")
            tab.wait_for_function("() => document.querySelector('div.w7-plotly svg.main-svg')", timeout=30000)
            tab.wait_for_function("() => document.querySelectorAll('mjx-container').length >= 3", timeout=30000)
            assert tab.locator("div.w7-plotly svg.main-svg").count() >= 1
            tab.screenshot(path=str(artifacts / "autograder-feedback-bob.png"), full_page=True)
        finally:
            browser.close()
    assert not asked, f"the feedback asked the network for {asked}"
    assert not errors, errors


# -- the rules, on single cells (no kernel) -----------------------------------------------------------------------
def _test_cell(source: str, n: int, tb_line: int | None, ename="AssertionError", evalue="boom", outputs=(),
               frame_n: int | None = None):
    c = nbformat.v4.new_code_cell(source, execution_count=n)
    c.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "t", "points": 2, "locked": True}
    c.outputs = list(outputs)
    if tb_line is not None:
        c.outputs.append(nbformat.v4.new_output(
            "error", ename=ename, evalue=evalue,
            traceback=["\x1b[0;31mAssertionError\x1b[0m Traceback", f"Cell \x1b[0;32mIn[{frame_n or n}], line {tb_line}\x1b[0m\n"
                       f"----> {tb_line} ...", "Cell In[2], line 3, in add\n", f"{ename}: {evalue}"]))
    return c


SRC = "assert f(1) == 1, 'f(1)'\n### BEGIN HIDDEN TESTS\nassert f(99) == 99, 'f(99) secret'\n### END HIDDEN TESTS"


def test_classify_maps_the_traceback_line_onto_visible_and_hidden_regions():
    assert fb.classify(_test_cell(SRC, 7, None)) == {"status": "passed"}
    vis = fb.classify(_test_cell(SRC, 7, 1, evalue="f(1) gave 2"))
    assert vis["kind"] == "visible" and vis["line"] == 1 and vis["message"] == "AssertionError: f(1) gave 2"
    assert vis["code"] == "assert f(1) == 1, 'f(1)'"
    assert fb.classify(_test_cell(SRC, 7, 3))["kind"] == "hidden"
    # a frame of another cell (the student's function) does not decide; no frame of the cell at all: hidden
    assert fb.classify(_test_cell(SRC, 8, 1, frame_n=5))["kind"] == "hidden"
    assert fb.classify(_test_cell("assert f(1) == 1", 8, 1, frame_n=5))["kind"] == "visible"


def test_feedback_notebook_drops_hidden_source_output_and_secret_text():
    nb = nbformat.v4.new_notebook()
    head = nbformat.v4.new_markdown_cell("## Part 3: f (2 points)")
    cell = _test_cell(SRC, 7, 3, evalue="f(99) secret",
                      outputs=[nbformat.v4.new_output("stream", name="stdout", text="f called with 99\n")])
    spy = nbformat.v4.new_code_cell("print(open_cells())", execution_count=8)
    spy.outputs = [nbformat.v4.new_output("stream", name="stdout", text="assert  f(99) == 99, 'f(99) secret'\n")]
    nb.cells = [head, cell, spy]
    secrets = {"assert f(99) == 99, 'f(99) secret'"}
    out = fb.feedback_notebook(nb, secrets=secrets, titles=fb.part_titles(nb), pending=set())
    text = json.dumps(out)
    assert "99" not in out.cells[1].source and out.cells[1].outputs == []
    assert out.cells[1].metadata["w7_result"] == {"status": "failed", "kind": "hidden", "part": "Part 3: f (2 points)"}
    assert "f(99) secret" not in text and fb.REMOVED in text


def test_secret_lines_are_what_the_student_version_does_not_hold_anywhere():
    """A solution line that the student's notebook quotes inside a longer line (exercise 01's docstring says
    `2. demos = task.shots(shots, seed=seed) (the same ...)`) is not a secret: flagging it withheld every student's
    feedback for that notebook. A line the student version does not hold stays secret."""
    def nb(*sources):
        out = nbformat.v4.new_notebook()
        out.cells = [nbformat.v4.new_code_cell(x) for x in sources]
        return out

    source = nb('def evaluate(task, shots, seed):\n    """2. demos = task.shots(shots, seed=seed) (the same ones)"""\n'
                "    ### BEGIN SOLUTION\n    demos = task.shots(shots, seed=seed)\n"
                "    return [d.prompt for d in demos if d.answer]\n    ### END SOLUTION\n")
    release = nb('def evaluate(task, shots, seed):\n    """2. demos = task.shots(shots, seed=seed) (the same ones)"""\n'
                 "    # YOUR CODE HERE\n    raise NotImplementedError()\n")
    secrets = fb.secret_lines(source, release)
    assert secrets == {"return [d.prompt for d in demos if d.answer]"}, secrets
    assert fb.leaks("<pre>2. demos = task.shots(shots, seed=seed) (the same ones)</pre>", secrets) == []
    assert fb.leaks("<pre>return [d.prompt for d in demos if d.answer]</pre>", secrets) != []
    # without a student version every solution line is secret
    assert "demos = task.shots(shots, seed=seed)" in fb.secret_lines(source, None)


def test_what_a_student_wrote_is_not_secret_from_them():
    """A correct answer is often the solution's own line; finding it in the student's feedback is no leak (flagging
    it withheld the feedback of everyone who got a part right). The test cells' hidden lines stay secret even
    though nbgrader puts them back into the autograded notebook."""
    secrets = {"previous = current", "assert levenshtein('ab', 'ba') == 2", "return int(previous[-1])"}
    nb = nbformat.v4.new_notebook()
    answer = nbformat.v4.new_code_cell("def f():\n    previous = current\n    return previous",
                                       metadata={"nbgrader": {"solution": True, "grade": False, "grade_id": "a"}})
    test = nbformat.v4.new_code_cell("### BEGIN HIDDEN TESTS\nassert levenshtein('ab', 'ba') == 2\n"
                                     "### END HIDDEN TESTS",
                                     metadata={"nbgrader": {"grade": True, "solution": False, "grade_id": "t",
                                                            "points": 1}})
    nb.cells = [answer, test]
    assert fb.own_lines(secrets, nb) == {"previous = current"}
