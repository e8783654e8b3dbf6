"""The command line on an instructor workspace: one command from a folder of submissions to grades and feedback;
late submissions and resubmissions; nothing lost (backups, kill -9 and resume grades each submission exactly
once, submissions never modified)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]  # about 2-6 min in all, see autograder/README.md

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "autograder"
COURSE = FIX / "course"
SOLUTION = COURSE / "solutions" / "00-demo" / "demo.ipynb"
WRONG = FIX / "00-demo-fixtures" / "wrong_add_type.ipynb"
PARTIAL = FIX / "00-demo-fixtures" / "no_valueerror.ipynb"


def cli(ws: Path, *args: str, timeout: int = 600, course: Path = COURSE, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "autograder", "--workspace", str(ws), "--course-root", str(course), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kw)


def tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def journal(ws: Path) -> list[tuple]:
    con = sqlite3.connect(ws / "gradebook.db")
    try:
        return con.execute("SELECT student, status, total, run_id FROM w7_journal ORDER BY student").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def gradebook_submissions(ws: Path) -> list[str]:
    con = sqlite3.connect(ws / "gradebook.db")
    try:
        return [r[0] for r in con.execute(
            "SELECT student.id FROM submitted_assignment JOIN student ON student.id = submitted_assignment.student_id")]
    finally:
        con.close()


def test_grade_all_late_resubmission_and_feedback(tmp_path):
    subs, ws = tmp_path / "subs", tmp_path / "ws"
    (subs / "carol").mkdir(parents=True)
    (subs / "alice.ipynb").write_bytes(SOLUTION.read_bytes())
    (subs / "bob.ipynb").write_bytes(WRONG.read_bytes())
    (subs / "carol" / "demo.ipynb").write_bytes(PARTIAL.read_bytes())
    (subs / "carol" / "timestamp.txt").write_text("2026-12-02 17:00:00.000000 UTC")  # one day late
    (subs / "dave.ipynb").write_text('{"cells": [')  # corrupt
    before = tree_hash(subs)
    # explicit times, never today's date: the .ipynb files (no timestamp.txt) were handed in 5 h before the due date
    on_time = ("--submitted-at", "2026-12-01 12:00:00 UTC")
    r = cli(ws, "grade-all", "00-demo", "--from", str(subs), "--duedate", "2026-12-01 17:00:00 UTC", *on_time)
    assert r.returncode == 1, r.stdout + r.stderr  # dave's corrupt notebook failed
    assert "FAILED dave" in r.stdout and "1 submission(s) failed" in r.stdout
    assert "4 new" in r.stdout
    assert tree_hash(subs) == before, "the submissions folder was modified"
    rows = {row["student"]: row for row in csv.DictReader(open(ws / "exports" / "grades.csv"))}
    assert {k: float(v["autograded_score"]) for k, v in rows.items()} == {
        "alice": 5.0, "bob": 3.0, "carol": 2.0, "dave": 0.0}
    assert float(rows["carol"]["seconds_late"]) == 86400.0 and float(rows["bob"]["seconds_late"]) == 0.0
    assert rows["alice"]["timestamp"].startswith("2026-12-01T12:00:00"), rows["alice"]
    assert rows["dave"]["status"] == "failed" and "corrupt JSON" in rows["dave"]["flags"]
    assert (ws / "exports" / "summary" / "carol.md").read_text().count("00-demo") == 1
    # status names each student's state and the reason
    st = cli(ws, "status", "00-demo", "--json")
    state = {x["student"]: x for x in json.loads(st.stdout)["00-demo"]}
    assert state["alice"]["status"] == "graded" and state["dave"]["status"] == "failed"
    assert "corrupt JSON" in state["dave"]["detail"]
    # feedback exists and never shows hidden tests (nbgrader's own feedback does, #917)
    for who in ("alice", "bob", "carol"):
        html = (ws / "feedback" / who / "00-demo" / "demo.html").read_text()
        assert "10**12" not in html and "HIDDEN TESTS" not in html and "hidden tests" in html
    # a resubmission is graded again (and only it); the first one is kept in submitted-history/
    sub_before = tree_hash(ws / "submitted")
    (subs / "bob.ipynb").write_bytes(SOLUTION.read_bytes())
    r = cli(ws, "grade-all", "00-demo", "--from", str(subs), *on_time)
    assert r.returncode == 1, r.stdout + r.stderr  # dave still failed
    assert "1 resubmitted, 3 unchanged" in r.stdout and "graded 1 submission" in r.stdout
    assert list((ws / "submitted-history" / "bob" / "00-demo").iterdir())
    assert sub_before != tree_hash(ws / "submitted")
    rows = {row["student"]: row for row in csv.DictReader(open(ws / "exports" / "grades.csv"))}
    assert float(rows["bob"]["autograded_score"]) == 5.0 and float(rows["bob"]["seconds_late"]) == 0.0
    assert sorted(gradebook_submissions(ws)) == ["alice", "bob", "carol", "dave"]
    assert len(list((ws / "backups").glob("gradebook-*.db"))) >= 1


def test_kill_9_mid_batch_then_resume_grades_each_exactly_once(tmp_path):
    subs, ws = tmp_path / "subs", tmp_path / "ws"
    subs.mkdir()
    students = [f"s{i}" for i in range(6)]
    for i, st in enumerate(students):
        (subs / f"{st}.ipynb").write_bytes((SOLUTION if i % 2 == 0 else WRONG).read_bytes())
    assert cli(ws, "collect", "00-demo", "--from", str(subs)).returncode == 0
    submitted = tree_hash(ws / "submitted")
    cmd = [sys.executable, "-m", "autograder", "--workspace", str(ws), "--course-root", str(COURSE),
           "autograde", "00-demo", "--workers", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 400
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (ws / "gradebook.db").exists() and len(journal(ws)) >= 2:
                break
            time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI, its workers, the sandboxed kernels
        proc.wait()
    first = journal(ws)
    assert 2 <= len(first) < 6, f"the kill came too late to test anything: {first}"
    time.sleep(2)
    # A kernel whose sandbox outlived the killed run (re-parented to init) is stopped by the next run.
    r = cli(ws, "autograde", "00-demo", "--workers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    orphans = subprocess.run(["ps", "-eo", "ppid=,args="], capture_output=True, text=True).stdout.splitlines()
    left = [ln for ln in orphans if "/w7k-" in ln and ln.split(None, 1)[0] == "1"]
    assert not left, f"kernels of the killed run survived the resume: {left}"
    assert f"graded {6 - len(first)} submission" in r.stdout
    final = journal(ws)
    assert [row[0] for row in final] == students
    assert {row[0]: row[2] for row in final} == {st: (5.0 if i % 2 == 0 else 3.0) for i, st in enumerate(students)}
    assert sorted(gradebook_submissions(ws)) == students  # one submission each
    runs = [json.loads(line) for line in (ws / "autograde-runs.log").read_text().splitlines()]
    graded = [x["student"] for x in runs]
    assert sorted(graded) == students, f"each submission graded exactly once, got {sorted(graded)}"
    assert tree_hash(ws / "submitted") == submitted, "grading modified submitted/"
    backups = sorted((ws / "backups").glob("gradebook-*.db"))
    assert backups, "no gradebook backup before the second run"
    con = sqlite3.connect(backups[-1])
    assert len(con.execute("SELECT * FROM w7_journal").fetchall()) == len(first)
    con.close()
    # nothing left to do: a third run grades nothing
    r = cli(ws, "autograde", "00-demo")
    assert r.returncode == 0 and "nothing to grade: 6 submission(s) unchanged since their last grading" in r.stdout, \
        r.stdout + r.stderr


def test_cli_errors_are_clear(tmp_path):
    r = cli(tmp_path / "ws", "autograde", "no-such-assignment")
    assert r.returncode != 0 and "no assignment 'no-such-assignment'" in (r.stdout + r.stderr)
    r = cli(tmp_path / "ws", "collect", "00-demo", "--from", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "is not a folder of submissions" in r.stderr
    r = cli(tmp_path / "ws", "autograde", "00-demo", env={**os.environ, "PATH": "/nonexistent", "W7_SANDBOX": "bwrap"})
    assert r.returncode == 2 and "cannot sandbox student code: missing bwrap" in r.stderr, r.stderr


# -- limits and faults (issue 15, point 5) ------------------------------------------------------------------------
def with_cell(src: Path, code: str) -> str:
    """The notebook `src` with a code cell of the student's own appended (no nbgrader metadata)."""
    import nbformat

    nb = nbformat.read(src, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(code))
    nb.cells[-1].pop("id", None)
    return nbformat.writes(nb)


# writes 64 KiB files into the working folder, /tmp and the kernel's socket folder until each refuses (600 at
# most), prints how far it got, then raises the last error: the bound is on all files together, not per file
FILL = """import os, sys
kdir = os.path.dirname(sys.argv[sys.argv.index('-f') + 1])
written, last = {}, None
for name, d in (('work', '.'), ('tmp', '/tmp'), ('kernel-dir', kdir)):
    n, written[name] = 0, None
    try:
        for i in range(600):  # 37.5 MiB at most: a bound that does not hold shows as None, not a full disk
            with open(os.path.join(d, f'w7fill-{name}-{i}'), 'wb') as f:
                f.write(b'x' * 65536)
            n += 65536
    except OSError as e:
        last = e
        written[name] = [n, e.errno]
print('W7FILL', written)
raise last"""


def test_writes_are_bounded_in_total_the_cell_errors_and_the_batch_goes_on(tmp_path):
    subs, ws = tmp_path / "subs", tmp_path / "ws"
    subs.mkdir()
    (subs / "filler.ipynb").write_text(with_cell(SOLUTION, FILL))
    (subs / "plain.ipynb").write_bytes(SOLUTION.read_bytes())
    bound = 16 * 2**20
    env = {**os.environ, "W7_WRITE_BYTES": str(bound)}
    r = cli(ws, "grade-all", "00-demo", "--from", str(subs), "--submitted-at", "2026-12-01 12:00:00 UTC", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    state = {x["student"]: x for x in json.loads(cli(ws, "status", "00-demo", "--json").stdout)["00-demo"]}
    assert state["plain"]["score"] == 5.0 and state["filler"]["score"] == 5.0, state  # the answers still count
    import nbformat

    cell = nbformat.read(ws / "autograded" / "filler" / "00-demo" / "demo.ipynb", as_version=4).cells[-1]
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert errors and errors[0].ename == "PermissionError", cell.outputs  # that cell errors
    written = json.loads(text.split("W7FILL", 1)[1].strip().replace("'", '"').replace("None", "null"))
    assert written["work"][1] == 28 and written["tmp"][1] == 28, written  # ENOSPC: one bound for both folders
    assert 0.5 * bound < written["work"][0] + written["tmp"][0] <= bound, written
    assert written["kernel-dir"] == [0, 13], written  # EACCES: the socket folder (on the host's disk) is sealed
    # nothing reached the host: no such file in the host's temporary folders or in the workspace
    import glob
    import tempfile

    left = [p for root in (tempfile.gettempdir(), str(ws)) for p in glob.glob(f"{root}/**/w7fill-*", recursive=True)]
    assert not left, left[:5]


SLOW = "import time\ntime.sleep(30)  # still grading when the run is killed"


def test_a_killed_run_leaves_workers_and_kernels_the_next_run_ends_them(tmp_path):
    from autograder import runs

    subs, ws = tmp_path / "subs", tmp_path / "ws"
    subs.mkdir()
    for st in ("slow0", "slow1"):
        (subs / f"{st}.ipynb").write_text(with_cell(SOLUTION, SLOW))
    for st in ("ok2", "ok3"):
        (subs / f"{st}.ipynb").write_bytes(SOLUTION.read_bytes())
    assert cli(ws, "collect", "00-demo", "--from", str(subs)).returncode == 0
    cmd = [sys.executable, "-m", "autograder", "--workspace", str(ws), "--course-root", str(COURSE),
           "autograde", "00-demo", "--workers", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    recorded: list[tuple[str, int, int]] = []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            recorded = [(k, int(p), int(s)) for f in ws.glob("running/*/*") for k, p, s in [f.name.split("-")]]
            if sum(k == "kernel" for k, _, _ in recorded) >= 2:
                break
            time.sleep(0.2)
    finally:
        proc.kill()  # kill -9 of the parent only: its workers and their kernels go on
        proc.wait()
    assert sum(k == "kernel" for k, _, _ in recorded) >= 2 and sum(k == "worker" for k, _, _ in recorded) == 2, \
        recorded
    alive = [(k, p) for k, p, s in recorded if runs.start_time(p) == s]
    assert len(alive) == len(recorded), f"expected every worker and kernel alive after the kill: {alive}"
    r = cli(ws, "autograde", "00-demo", "--workers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stopped what an interrupted earlier autograde run left running: 2 worker(s) and " in r.stdout, r.stdout
    still = [(k, p) for k, p, s in recorded if runs.start_time(p) == s]
    assert not still, f"the next run left them running: {still}"
    assert "graded 4 submission(s)" in r.stdout, r.stdout
    assert {row[0]: row[2] for row in journal(ws)} == {"slow0": 5.0, "slow1": 5.0, "ok2": 5.0, "ok3": 5.0}
    assert not list(ws.glob("running/*")), "the run that ended left its run folder"


def make_gradebook(path: Path) -> None:
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(path), "w7-test-course") as gb:
        gb.add_student("alice")


GRADEBOOK_COMMANDS = [("autograde", "00-demo"), ("grade-all", "00-demo", "--from", "{subs}"), ("status", "00-demo"),
                      ("export",), ("feedback", "00-demo"),
                      ("grade-manual", "00-demo", "--student", "alice", "--grade-id", "demo-written", "--score", "1"),
                      ("collect", "00-demo", "--from", "{subs}")]


def test_a_corrupt_gradebook_names_the_newest_good_backup_and_changes_nothing(tmp_path):
    ws, subs = tmp_path / "ws", tmp_path / "subs"
    (ws / "backups").mkdir(parents=True)
    subs.mkdir()
    (subs / "alice.ipynb").write_bytes(SOLUTION.read_bytes())
    good = ws / "backups" / "gradebook-20261201T100000Z.db"
    make_gradebook(good)
    older = ws / "backups" / "gradebook-20261130T100000Z.db"
    make_gradebook(older)
    bad_backup = ws / "backups" / "gradebook-20261202T100000Z.db"  # the newest backup is damaged too
    bad_backup.write_bytes(good.read_bytes()[:2048])
    for i, p in enumerate((older, good, bad_backup)):
        os.utime(p, (1_700_000_000 + i * 3600,) * 2)
    (ws / "gradebook.db").write_bytes(b"this is not sqlite" * 100)
    before = tree_hash(ws)
    for args in GRADEBOOK_COMMANDS:
        r = cli(ws, *(a.format(subs=subs) for a in args))
        out = r.stdout + r.stderr
        assert r.returncode == 2, (args, out)
        assert "Traceback" not in out and f"the gradebook {ws / 'gradebook.db'} is not a valid nbgrader gradebook" \
            in out and "file is not a database" in out, (args, out)
        assert f"cp {ws / 'gradebook.db'} {ws / 'gradebook.db.damaged'} && cp {good} {ws / 'gradebook.db'}" in out, out
        assert tree_hash(ws) == before, f"{args[0]} changed the workspace"
    assert not (ws / "nbgrader_config.py").exists()
    # the restore command it prints works: the next command runs
    r = subprocess.run(out.split("\n  ", 1)[1].split("\n", 1)[0], shell=True)
    assert r.returncode == 0
    r = cli(ws, "status", "00-demo")
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_read_only_or_unwritable_workspace_says_which_folder_and_what_to_do(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    make_gradebook(ws / "gradebook.db")
    before = tree_hash(ws)
    base = [sys.executable, "-m", "autograder", "--workspace", str(ws), "--course-root", str(COURSE)]
    ro = f"mount --bind {ws} {ws} && mount -o remount,ro,bind {ws} && exec \"$@\""
    probe = subprocess.run(["unshare", "-m", "sh", "-c", ro, "sh", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot make a read-only mount here (unshare -m and mount need root or a user namespace)")
    for args in (("status", "00-demo"), ("autograde", "00-demo"), ("export",)):
        r = subprocess.run(["unshare", "-m", "sh", "-c", ro, "sh", *base, *args], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stdout + r.stderr)
        assert f"the instructor workspace {ws} cannot be written (a read-only file system)" in r.stderr, r.stderr
        assert "--workspace or set W7_WORKSPACE" in r.stderr
    assert tree_hash(ws) == before
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = cli(blocker / "ws", "status", "00-demo")
    assert r.returncode == 2 and f"cannot create the instructor workspace {blocker / 'ws'}" in r.stderr, r.stderr
