"""The whole student and instructor journey on a real JupyterHub, driven in Debian's chromium.

A hub (deploy/jupyterhub/jupyterhub_config.py, configurable-http-proxy from npm) runs on 127.0.0.1 with three
unix test users. The instructor releases exercise 01; a student logs in, fetches it from JupyterLab's assignment
list, answers one part in the notebook editor, validates and submits; the instructor collects, autogrades with the
course's autograder and releases feedback; the student fetches the feedback and sees the points of the part they
answered. Then the permissions: a student cannot read another student's work, the exchange's inbound folder or
the solutions. Screenshots of every step go to test-artifacts/hub/. Everything started is stopped at the end.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from autograder.source import load_solution
from hub_harness import PASSWORD, STUDENTS, Hub, run

pytestmark = [pytest.mark.hub, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
COURSE_ID = "week7-advanced-transformers"
ASSIGNMENT = "01-scale-comparison"
NOTEBOOK = "scale_comparison"
PART_CELL = "scale-comparison-metrics-code"  # the solution cell the student answers in the browser
PART_TESTS = {"scale-comparison-exact-match", "scale-comparison-edit-similarity"}  # the test cells it feeds
CHROMIUM = shutil.which("chromium")


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
        h.prepare()
        h.start()
        yield h
    finally:
        h.stop()
        left = h.leftovers()
        shutil.rmtree(h.base, ignore_errors=True)
        assert not left, "processes left behind by the hub test:\n" + "\n".join(left)


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

            # 3. opens the notebook and answers one part in the editor
            page.click(f"a:has-text('{ASSIGNMENT}')")
            page.click(f"a:has-text('{NOTEBOOK}')")
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
            page.wait_for_timeout(2000)
            cell = page.locator(".jp-Notebook .jp-CodeCell").filter(has_text="def normalize_answer").first
            cell.scroll_into_view_if_needed()
            cell.locator(".cm-content").click()
            page.keyboard.press("Control+a")
            page.keyboard.insert_text(solution_source(PART_CELL))
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

            # a second student submits the untouched release from the command line (for the privacy checks)
            other = STUDENTS[1]
            home = f"/home/{other}"
            run([str(hub.env_bin / "python"), "-m", "nbgrader", "fetch_assignment", ASSIGNMENT, "--course", COURSE_ID,
                 f"--Exchange.root={hub.exchange}"], user=other, cwd=Path(home))
            run([str(hub.env_bin / "python"), "-m", "nbgrader", "submit", ASSIGNMENT, "--course", COURSE_ID,
                 f"--Exchange.root={hub.exchange}"], user=other, cwd=Path(home))

            # 6. the instructor collects, autogrades with the course's autograder and releases feedback
            hub.as_instructor("-m", "autograder", "collect", ASSIGNMENT)
            grade = hub.as_instructor("-m", "autograder", "autograde", ASSIGNMENT, "--student", STUDENTS[0],
                                      timeout=900)
            (shots / "09-autograde.txt").write_text(grade.stdout + grade.stderr)
            hub.as_instructor("-m", "autograder", "feedback", ASSIGNMENT, "--student", STUDENTS[0], "--release")

            # 7. the student fetches the feedback and sees the points of the part they answered
            open_assignment_list(page)
            page.click("button:has-text('Fetch Feedback')")
            page.locator("a:has-text('view feedback')").first.wait_for(timeout=60_000)
            page.screenshot(path=str(shots / "07-feedback-fetched.png"))
            # the fetched feedback lies in the student's folder; open it through their own Jupyter server
            home = Path(f"/home/{STUDENTS[0]}")
            found = sorted(home.glob(f"**/{ASSIGNMENT}/feedback/*/{NOTEBOOK}.html"))
            assert found, "Fetch Feedback put no feedback html in the student's folder"
            page.goto(f"{hub.url}/user/{STUDENTS[0]}/files/{found[-1].relative_to(home).as_posix()}")
            page.wait_for_load_state()
            page.screenshot(path=str(shots / "08-feedback.png"), full_page=True)
            text = page.inner_text("body")
            m = re.search(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", text)
            assert m, text[:500]
            assert float(m.group(1)) >= points(PART_TESTS) > 0, (m.group(0), points(PART_TESTS))
            assert float(m.group(1)) < float(m.group(2))
            assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
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
        "read the gradebook": ["cat", str(hub.course_root / "gradebook.db")],
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
