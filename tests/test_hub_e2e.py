"""The whole student and instructor journey on a real JupyterHub, driven in Debian's chromium.

A hub (deploy/jupyterhub/jupyterhub_config.py, configurable-http-proxy from npm) runs on 127.0.0.1 with three
unix test users. The instructor releases exercise 01; a student logs in, fetches it from JupyterLab's assignment
list, answers one part in the notebook editor, validates and submits; the instructor collects, autogrades with the
course's autograder, grades the written answers by hand in the formgrader (the hand scores reach the command
line's gradebook and export) and releases feedback; the student fetches the feedback and sees the points of the part
they answered, which test cells passed and failed, and the grader's comment, and no hidden test or mark scheme. Then the permissions: a student cannot read another student's work, the exchange's inbound folder or
the solutions. Screenshots of every step go to test-artifacts/hub/. Everything started is stopped at the end.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import time
from pathlib import Path

import pytest

from autograder.source import load_solution
from hub_harness import INSTRUCTOR, PASSWORD, STUDENTS, TEST_USERS, Hub, run, user_exists

pytestmark = [pytest.mark.hub, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
COURSE_ID = "week7-advanced-transformers"
ASSIGNMENT = "01-scale-comparison"
NOTEBOOK = "scale_comparison"
PART_CELL = "scale-comparison-metrics-code"  # the solution cell the student answers in the browser
PART_TESTS = {"scale-comparison-exact-match", "scale-comparison-edit-similarity"}  # the test cells it feeds
CHROMIUM = shutil.which("chromium")
WRITTEN = ("scale-comparison-analysis-where", "scale-comparison-analysis-metric",
           "scale-comparison-analysis-compute", "scale-comparison-analysis-gpt")  # the hand-graded answers
HAND_SCORE = 1.5
WRITTEN_ANSWER = "Translation appears between 57K and 220K parameters; the fitted slope is steep."
COMMENT = "Right place to look; give the interval of the emergence scale too."
COMMENT_2 = "Which task? Give each task's emergence scale with its interval."
# the second student's mistake (one of exercise 01's wrong-submission fixtures) and the visible check that names it
WRONG_EXACT_MATCH = ("[float(normalize_answer(p) == normalize_answer(t)) for p, t in zip(predictions, targets)]",
                     "[float(str(p).strip() == t.strip()) for p, t in zip(predictions, targets)]")
VISIBLE_MESSAGE = "case and inner whitespace"
# the submitted notebook's id in the gradebook (the formgrader's grading page is /formgrader/submissions/<id>)
SUBMISSION_ID = """
from nbgrader.api import Gradebook
with Gradebook("sqlite:///{db}", "{course}") as gb:
    print(gb.find_submission_notebook("{nb}", "{a}", "{st}").id)
"""


def solution_source(grade_id: str) -> str:
    nb = load_solution(ASSIGNMENT, NOTEBOOK)
    src = next("".join(c["source"]) for c in nb["cells"]
               if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)
    src = re.sub(r"[ \t]*### BEGIN SOLUTION\n", "", src)
    return re.sub(r"[ \t]*### END SOLUTION\n?", "", src)


def points(grade_ids: set[str]) -> float:
    nb = load_solution(ASSIGNMENT, NOTEBOOK)
    return sum(c["metadata"]["nbgrader"].get("points", 0) for c in nb["cells"]
               if c["metadata"].get("nbgrader", {}).get("grade_id") in grade_ids)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(base=Path("/tmp") / f"w7-e2e-{int(time.time())}")
    try:
        h.prepare()  # creates the test users, their environment, the exchange and the instructor's course clone
        h.start()
        yield h
    finally:
        h.stop()
        left = h.leftovers()
        removed = h.remove()  # the users and their homes go too: the next run starts from a clean machine
        assert not left, "processes left behind by the hub test:\n" + "\n".join(left)
        assert not any(user_exists(u) for u in TEST_USERS), f"test users left behind (removed: {removed})"


@pytest.fixture(scope="module")
def shots(artifacts):
    d = artifacts / "hub"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def login(browser, hub: Hub, user: str):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.on("dialog", lambda d: d.accept())
    page.goto(hub.url + "/hub/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_selector(".lm-MenuBar-itemLabel:has-text('Nbgrader')", timeout=240_000)
    page.wait_for_timeout(1500)
    toast = page.get_by_role("button", name="No", exact=True)  # "get notified about Jupyter news?"
    if toast.count():
        toast.first.click()
    return page


def open_assignment_list(page):
    page.click(".lm-MenuBar-itemLabel:has-text('Nbgrader')")
    page.click(".lm-Menu-itemLabel:has-text('Assignment List')")
    page.wait_for_selector("text=Released assignments", timeout=60_000)
    page.wait_for_timeout(1500)


SCROLL = """e => { const before = e.scrollTop; e.scrollTop = before + e.clientHeight * 0.7;
                   return e.scrollTop === before; }"""  # true at the bottom


def scroller(page):
    return page.locator(".jp-NotebookPanel .jp-WindowedPanel-outer").first


def notebook_text(page) -> str:
    """The text of every cell of the open notebook as the student sees it: JupyterLab renders only the cells near
    the view, so scroll from the top to the bottom and collect what is rendered on the way."""
    scroller(page).evaluate("e => { e.scrollTop = 0; }")
    seen = []
    for _ in range(400):
        page.wait_for_timeout(150)
        seen.extend(page.locator(".jp-Notebook .jp-Cell").all_inner_texts())
        if scroller(page).evaluate(SCROLL):
            page.wait_for_timeout(300)
            seen.extend(page.locator(".jp-Notebook .jp-Cell").all_inner_texts())
            break
    return " ".join(" ".join(seen).split())


def scroll_to(page, locator):
    """Scroll the notebook from the top until `locator` is rendered; return its first match, in view."""
    scroller(page).evaluate("e => { e.scrollTop = 0; }")
    for _ in range(400):
        page.wait_for_timeout(150)
        if locator.count():
            first = locator.first
            first.scroll_into_view_if_needed()
            return first
        if scroller(page).evaluate(SCROLL):
            break
    raise AssertionError(f"not in the notebook: {locator}")


def cell_source(nb: dict, grade_id: str) -> str:
    return "".join(next(c["source"] for c in nb["cells"]
                        if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id))


def set_cell_source(nb: dict, grade_id: str, source: str) -> None:
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)
    cell["source"] = source


def questions() -> dict[str, str]:
    """grade id -> the first words of each written question of the student version, as the page shows them."""
    nb = json.loads((ROOT / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb").read_text())
    out = {}
    for c in nb["cells"]:
        gid = c["metadata"].get("nbgrader", {}).get("grade_id", "")
        if "-q-" in gid:
            text = re.sub(r"\*\*.*?\*\*", "", "".join(c["source"])).replace("`", "")
            out[gid] = " ".join(text.split()[:7])
    assert len(out) == len(WRITTEN), out
    return out


def open_feedback(page, hub: Hub, student: str, shots: Path, n: str) -> str:
    """Fetch Feedback in the student's assignment list, open the feedback page through their own server and
    return its text."""
    open_assignment_list(page)
    page.click("button:has-text('Fetch Feedback')")
    page.locator("a:has-text('view feedback')").first.wait_for(timeout=60_000)
    page.screenshot(path=str(shots / f"{n}-feedback-fetched.png"))
    home = Path(f"/home/{student}")
    found = sorted(home.glob(f"**/{ASSIGNMENT}/feedback/*/{NOTEBOOK}.html"))
    assert found, "Fetch Feedback put no feedback html in the student's folder"
    page.goto(f"{hub.url}/user/{student}/files/{found[-1].relative_to(home).as_posix()}")
    page.wait_for_load_state()
    page.screenshot(path=str(shots / f"{n}-feedback-{student}.png"), full_page=True)
    return page.inner_text("body")


def test_student_and_instructor_journey(hub: Hub, shots: Path):
    """Check release -> fetch -> answer -> validate -> submit -> collect -> autograde -> feedback, in a browser."""
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run `make test` (it installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    # 1. the instructor releases the exercise to the exchange with the course's autograder
    hub.as_instructor("-m", "autograder", "release", ASSIGNMENT)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            # 2. a student logs in and fetches it
            page = login(browser, hub, STUDENTS[0])
            page.screenshot(path=str(shots / "01-student-logged-in.png"))
            open_assignment_list(page)
            page.screenshot(path=str(shots / "02-assignment-released.png"))
            page.click("button:has-text('Fetch')")
            page.wait_for_selector("button:has-text('Submit')", timeout=60_000)
            page.screenshot(path=str(shots / "03-assignment-fetched.png"))

            # 3. opens the notebook: every written question is there, before its answer cell
            page.click(f"a:has-text('{ASSIGNMENT}')")
            page.click(f"a:has-text('{NOTEBOOK}')")
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
            page.wait_for_timeout(2000)
            seen = notebook_text(page)
            for gid, words in questions().items():
                assert words in seen, f"question {gid} ({words!r}) is not in the student's notebook"
            page.screenshot(path=str(shots / "03b-questions-visible.png"))
            # answers one code part and one written question in the editor
            cell = scroll_to(page, page.locator(".jp-Notebook .jp-CodeCell").filter(has_text="def normalize_answer"))
            cell.locator(".cm-content").click()
            page.keyboard.press("Control+a")
            page.keyboard.insert_text(solution_source(PART_CELL))
            page.keyboard.press("Escape")
            # the first answer cell (its rendered text is exactly the placeholder; the introduction names it too)
            answer = scroll_to(page, page.locator(".jp-Notebook .jp-MarkdownCell").filter(has=page.locator(
                ".jp-RenderedMarkdown", has_text=re.compile(r"^\s*YOUR ANSWER HERE\s*$"))))
            answer = answer.element_handle()  # the same cell once editing hides its rendered text
            answer.dblclick()  # edit mode
            answer.wait_for_selector(".cm-content", state="visible", timeout=30_000).click()  # the cursor in it
            page.keyboard.press("Control+a")
            page.keyboard.insert_text(WRITTEN_ANSWER)
            page.keyboard.press("Escape")
            page.keyboard.press("Control+s")
            page.wait_for_selector("text=Saving completed", timeout=30_000)
            page.screenshot(path=str(shots / "04-part-answered.png"))

            # 4. validates: the answered part passes, the others still fail (the dialog says so)
            page.click(".jp-Toolbar >> text=Validate")
            dialog = page.locator(".jp-Dialog")
            dialog.wait_for(timeout=300_000)
            page.wait_for_function("() => !document.querySelector('.jp-Dialog') || "
                                   "!/validating/i.test(document.querySelector('.jp-Dialog').innerText)",
                                   timeout=300_000)
            page.screenshot(path=str(shots / "05-validated.png"))
            report = dialog.inner_text()
            assert "NotImplementedError" in report or "failed" in report.lower(), report[:500]
            page.locator(".jp-Dialog button").last.click()

            # 5. submits
            page.click(".lm-TabBar-tabLabel:has-text('Assignments')")
            page.click("button:has-text('Submit')")
            page.wait_for_selector("text=Submitted assignments", timeout=30_000)
            page.wait_for_function("() => /submitted/i.test(document.body.innerText) && "
                                   "!/There are no submitted assignments/.test(document.body.innerText)",
                                   timeout=60_000)
            page.screenshot(path=str(shots / "06-submitted.png"))
            mine = sorted(Path(f"/home/{STUDENTS[0]}").glob(f"**/{ASSIGNMENT}/{NOTEBOOK}.ipynb"))
            assert mine and WRITTEN_ANSWER in cell_source(json.loads(mine[0].read_text()), WRITTEN[0]), \
                "the written answer typed in the browser is not in the student's notebook"

            # a second student answers from the command line, with the classic mistake in exact_match (strips
            # only) and a written answer, and submits
            other = STUDENTS[1]
            home = Path(f"/home/{other}")
            nbg = [str(hub.env_bin / "python"), "-m", "nbgrader"]
            run([*nbg, "fetch_assignment", ASSIGNMENT, "--course", COURSE_ID, f"--Exchange.root={hub.exchange}"],
                user=other, cwd=home)
            theirs = next(home.glob(f"**/{ASSIGNMENT}/{NOTEBOOK}.ipynb"))
            nb = json.loads(theirs.read_text())
            wrong = solution_source(PART_CELL).replace(*WRONG_EXACT_MATCH)
            assert wrong != solution_source(PART_CELL), "the mistake no longer applies to the solution"
            set_cell_source(nb, PART_CELL, wrong)
            set_cell_source(nb, WRITTEN[0], "The jump is at the largest model; I did not fit a slope.")
            theirs.write_text(json.dumps(nb))  # as root: the student keeps ownership (write in place)
            run([*nbg, "submit", ASSIGNMENT, "--course", COURSE_ID, f"--Exchange.root={hub.exchange}"],
                user=other, cwd=home)

            # 6. the instructor collects and autogrades both submissions with the course's autograder
            hub.as_instructor("-m", "autograder", "collect", ASSIGNMENT)
            grade = hub.as_instructor("-m", "autograder", "autograde", ASSIGNMENT, timeout=1200)
            (shots / "09-autograde.txt").write_text(grade.stdout + grade.stderr)

            # 6b. feedback waits for the hand grading: releasing now holds it back and says what is left
            early = hub.as_instructor("-m", "autograder", "feedback", ASSIGNMENT, "--release")
            assert "NOT released" in early.stdout and WRITTEN[0] in early.stdout, early.stdout
            assert "released to the exchange" not in early.stdout, early.stdout
            assert "withheld" not in early.stdout, early.stdout  # no false alarm of leaked instructor text

            # 6c. the instructor grades the first student's written answer by hand in the hub's formgrader, in
            # the browser (the grading page shows the mark scheme), and the second's from a terminal
            sub_id = hub.as_instructor("-c", SUBMISSION_ID.format(
                db=hub.workspace / "gradebook.db", course=COURSE_ID, nb=NOTEBOOK, a=ASSIGNMENT,
                st=STUDENTS[0])).stdout.strip()
            ipage = login(browser, hub, INSTRUCTOR)
            ipage.goto(f"{hub.url}/user/{INSTRUCTOR}/formgrader/gradebook/{ASSIGNMENT}/{NOTEBOOK}")
            link = ipage.locator(f"a[href*='/formgrader/submissions/{sub_id}']").first
            link.wait_for(timeout=60_000)
            ipage.screenshot(path=str(shots / "10-formgrader-submissions.png"))
            link.click()
            box = ipage.locator(f"input.score[id='{WRITTEN[0]}']")
            box.wait_for(timeout=60_000)
            assert "Mark scheme" in ipage.inner_text("body"), ipage.inner_text("body")[:800]
            assert WRITTEN_ANSWER in ipage.inner_text("body")
            box.scroll_into_view_if_needed()
            box.fill(str(HAND_SCORE))
            box.press("Tab")  # the formgrader saves a score on change
            comment = ipage.locator(f"textarea.comment[id='{WRITTEN[0]}-comment']")
            comment.fill(COMMENT)
            comment.press("Tab")
            ipage.wait_for_timeout(3000)
            ipage.screenshot(path=str(shots / "11-formgrader-graded.png"), full_page=True)
            ipage.close()
            hub.as_instructor("-m", "autograder", "grade-manual", ASSIGNMENT, "--student", other,
                              "--grade-id", WRITTEN[0], "--score", "0.5", "--comment", COMMENT_2)
            # the hand scores reached the gradebook the command line uses (one workspace): export shows them
            exported = hub.as_instructor("-m", "autograder", "export")
            assert "0 submissions still need hand grading" in exported.stdout, exported.stdout
            rows = {r["student"]: r for r in csv.DictReader((hub.workspace / "exports" / "grades.csv").open())
                    if r["assignment"] == ASSIGNMENT}
            assert abs(float(rows[STUDENTS[0]]["manual_score"]) - HAND_SCORE) < 1e-6, rows[STUDENTS[0]]
            assert abs(float(rows[other]["manual_score"]) - 0.5) < 1e-6, rows[other]

            released = hub.as_instructor("-m", "autograder", "feedback", ASSIGNMENT, "--release")
            assert "released to the exchange for 2 student(s)" in released.stdout, released.stdout

            # 7. each student fetches their feedback in JupyterLab and reads it
            text = open_feedback(page, hub, STUDENTS[0], shots, "07")
            m = re.search(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", text)
            assert m, text[:500]
            assert float(m.group(1)) >= points(PART_TESTS) + HAND_SCORE > 0, (m.group(0), points(PART_TESTS))
            assert float(m.group(1)) < float(m.group(2))
            assert COMMENT in text, text[:2000]
            for gid in PART_TESTS:
                assert re.search(rf"Tests {re.escape(gid)}[^\n]*: passed", text), (gid, text[:2000])
            assert re.search(r"Tests \S+[^\n]*: failed", text), text[:2000]

            page2 = login(browser, hub, other)
            text2 = open_feedback(page2, hub, other, shots, "08")
            assert re.search(r"Tests scale-comparison-exact-match[^\n]*: failed", text2), text2[:2000]
            assert re.search(r"Tests scale-comparison-edit-similarity[^\n]*: passed", text2), text2[:2000]
            assert VISIBLE_MESSAGE in text2, "the visible assertion's message is not in the feedback"
            assert COMMENT_2 in text2
            for t in (text, text2):
                for secret in ("BEGIN HIDDEN TESTS", "BEGIN SOLUTION", "Mark scheme", "BEGIN MARK SCHEME"):
                    assert secret not in t, secret
        finally:
            browser.close()


def test_students_cannot_read_what_is_not_theirs(hub: Hub):
    """Check that a student cannot list the exchange's inbound folder, read another student's home or
    submission, or read the instructor's course directory (the solutions)."""
    me, other = STUDENTS
    inbound = hub.exchange / COURSE_ID / "inbound"
    probes = {
        "list the inbound folder": ["ls", str(inbound)],
        "read another student's home": ["ls", f"/home/{other}"],
        "read the solutions": ["ls", str(hub.course_root / "solutions")],
        "read the gradebook": ["cat", str(hub.workspace / "gradebook.db")],
        "list the instructor workspace": ["ls", str(hub.workspace)],
    }
    # nbgrader names each submission <student>+<assignment>+<time>+<random>: a student who cannot list the
    # inbound folder cannot find another's submission (the random part is not guessable). The files inside are
    # readable by whoever knows that name (the instructor must read them): nbgrader's exchange, documented.
    if any(e.name.startswith(other) for e in (inbound.iterdir() if inbound.exists() else [])):
        probes["find another student's submission"] = ["bash", "-c", f"cat {inbound}/{other}+*/*.ipynb"]
    for what, cmd in probes.items():
        r = run(cmd, user=me, check=False)
        assert r.returncode != 0, f"a student could {what}: {r.stdout[:300]}"
    assert "find another student's submission" in probes, "no second submission in the inbound folder"
    # and a student can still do their own work: fetch works and their home is theirs
    r = run(["ls", f"/home/{me}"], user=me, check=False)
    assert r.returncode == 0
