"""Autograding throughput: plain serial nbgrader vs the course pipeline, same submissions, same machine.

    .venv/bin/python benchmarks/bench_autograde.py                   # 40 submissions of the demo assignment
    .venv/bin/python benchmarks/bench_autograde.py --assignment 04-sparse-attention --course-root . --n 8

Baseline: one `nbgrader autograde <assignment>` command over all submissions (nbgrader's own workflow: one
process, one submission after another, no sandbox). Pipeline: `autograder.workspace.autograde` with --workers
processes (default 2), each submission in the bubblewrap sandbox merged into the
gradebook. Both clocks include their start-up. The submissions are generated from the assignment's solution,
its student version and its wrong-answer fixtures (when --fixtures is given or found); both graders must agree
on every total, or the benchmark fails. Prints the times, the time per submission and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.settings import Settings  # noqa: E402
from autograder.source import notebook_ids, solution_path  # noqa: E402
from autograder.workspace import autograde, import_folder  # noqa: E402


def make_submissions(course: Path, assignment: str, fixtures: Path | None, n: int, out: Path) -> list[str]:
    ids = notebook_ids(course / "solutions" / assignment)
    if len(ids) != 1:
        raise SystemExit("the benchmark handles single-notebook assignments")
    pool = [solution_path(assignment, course_root=course), course / "exercises" / assignment / f"{ids[0]}.ipynb"]
    if fixtures and (fixtures / "expected.json").exists():
        expected = json.loads((fixtures / "expected.json").read_text())
        # fixtures whose only point is stderr are left out: plain nbgrader scores them differently on purpose
        pool += [fixtures / k for k, v in expected.items() if v.get("lost") and (fixtures / k).suffix == ".ipynb"]
    out.mkdir(parents=True)
    students = []
    for i in range(n):
        sid = f"s{i:02d}"
        shutil.copy(pool[i % len(pool)], out / f"{sid}.ipynb")
        students.append(sid)
    return students


def nbgrader(args: list[str], root: Path, course: Path, db: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={root}",
           f"--CourseDirectory.source_directory={course / 'solutions'}", "--CourseDirectory.release_directory=release",
           f"--CourseDirectory.db_url=sqlite:///{db}", "--CourseDirectory.course_id=bench", "--force"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def baseline(course: Path, assignment: str, subs: Path, students: list[str], tmp: Path) -> tuple[float, dict]:
    root = tmp / "plain"
    root.mkdir()
    db = root / "gradebook.db"
    nb_id = notebook_ids(course / "solutions" / assignment)[0]
    r = nbgrader(["generate_assignment", assignment], root, course, db)
    if r.returncode:
        raise SystemExit("nbgrader generate_assignment failed:\n" + r.stderr[-2000:])
    for sid in students:
        d = root / "submitted" / sid / assignment
        d.mkdir(parents=True)
        shutil.copy(subs / f"{sid}.ipynb", d / f"{nb_id}.ipynb")
    t0 = time.perf_counter()
    r = nbgrader(["autograde", assignment], root, course, db)
    elapsed = time.perf_counter() - t0
    if r.returncode:
        print("warning: nbgrader autograde reported errors:\n" + r.stderr[-1500:], file=sys.stderr)
    con = sqlite3.connect(db)
    q = """SELECT submitted_assignment.student_id, SUM(COALESCE(grade.auto_score, 0)) FROM grade
           JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id
           JOIN submitted_assignment ON submitted_notebook.assignment_id = submitted_assignment.id
           JOIN grade_cells ON grade.cell_id = grade_cells.id
           WHERE grade_cells.cell_type = 'code' GROUP BY submitted_assignment.student_id"""
    try:
        totals = {k: float(v) for k, v in con.execute(q)}
    except sqlite3.OperationalError:
        totals = {}
    con.close()
    return elapsed, totals


def pipeline(course: Path, assignment: str, subs: Path, tmp: Path, workers: int) -> tuple[float, dict]:
    s = Settings()
    s.course_root = course
    s.workspace = tmp / "ws"
    from autograder.source import solution_path

    nb_id = solution_path(assignment, course_root=course).stem  # the .md source or a committed .ipynb
    import_folder(s, assignment, subs, [nb_id])
    t0 = time.perf_counter()
    res = autograde(s, assignment, workers=workers, progress=False)
    elapsed = time.perf_counter() - t0
    return elapsed, {k: r.total for k, r in res.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--assignment", default="00-demo")
    p.add_argument("--course-root", default=str(ROOT / "tests" / "fixtures" / "autograder" / "course"))
    p.add_argument("--fixtures", help="wrong-answer fixtures folder (default: the demo's, or "
                                      "the ones made from tests/fixtures/<assignment>/make_fixtures.py)")
    p.add_argument("--n", type=int, default=40, help="number of submissions (default 40)")
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    course = Path(a.course_root).resolve()
    if a.fixtures:
        fixtures = Path(a.fixtures)
    elif a.assignment == "00-demo":
        fixtures = ROOT / "tests" / "fixtures" / "autograder" / "00-demo-fixtures"
    elif (ROOT / "tests" / "fixtures" / a.assignment / "make_fixtures.py").is_file():
        sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
        from fixturelib import fixtures_for  # made from the assignment's list, as the tests make them

        fixtures = fixtures_for(a.assignment)
    else:
        fixtures = ROOT / "tests" / "fixtures" / a.assignment
    with tempfile.TemporaryDirectory(prefix="w7bench-") as tmp:
        tmp = Path(tmp)
        students = make_submissions(course, a.assignment, fixtures if fixtures.is_dir() else None, a.n, tmp / "subs")
        print(f"{a.n} submissions of {a.assignment}; {os.cpu_count()} CPU cores; load average "
              f"{os.getloadavg()[0]:.1f} at start", flush=True)
        t_plain, plain = baseline(course, a.assignment, tmp / "subs", students, tmp)
        print(f"plain nbgrader autograde (serial, unsandboxed): {t_plain:7.1f} s  "
              f"{t_plain / a.n:5.2f} s/submission", flush=True)
        t_pipe, ours = pipeline(course, a.assignment, tmp / "subs", tmp, a.workers)
        print(f"pipeline ({a.workers} workers, sandbox):              {t_pipe:7.1f} s  "
              f"{t_pipe / a.n:5.2f} s/submission", flush=True)
        print(f"ratio (plain / pipeline): {t_plain / t_pipe:.2f}x   load average at end {os.getloadavg()[0]:.1f}")
        diff = {k: (plain.get(k), ours.get(k)) for k in students if plain.get(k) != ours.get(k)}
        if diff:
            print(f"DISAGREEMENT on totals (plain, pipeline): {diff}")
            return 1
        print(f"both graders agree on all {len(students)} totals")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
