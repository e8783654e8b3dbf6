"""Each assignment's solution graded in the sandbox, against its time budget.

    nice -n 10 .venv/bin/python benchmarks/bench_grading.py               # every assignment under solutions/
    .venv/bin/python benchmarks/bench_grading.py 02-few-shot 04-sparse-attention

Grades each solution with `autograder.api.grade` (real nbgrader, bubblewrap sandbox, results compared outside the kernel), one
assignment after the other with one worker, so no two gradings share the CPU. The time is the solution's
grading run as the pipeline measures it (kernel start, the notebook's cells, nbgrader's passes), the same clock
that `check_assignment` reports. Prints each time against the budget (`autograder.api.BUDGET_S`, 90 s on 2 cores,
from the exercise contract) as a ratio, with the machine's load average at start and end: a loaded machine
inflates every ratio, so read them together. The tests hold only a cap of 3x the budget; this is where the
budget itself is measured. Exits 1 if a solution does not score full marks.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.api import BUDGET_S, grade  # noqa: E402
from autograder.source import materialise, notebook_ids, solution_path  # noqa: E402


def solution_of(assignment: str) -> Path:
    """The solution to grade: its notebook (made from solutions/<assignment>/<name>.md), or the folder of several."""
    src = ROOT / "solutions" / assignment
    ids = notebook_ids(src)
    return solution_path(assignment) if len(ids) == 1 else (materialise(src) and src)


def main(argv: list[str] | None = None) -> int:
    # nbgrader's gradebook merge warns about SQLAlchemy sessions on every run; it says nothing about the timing
    warnings.filterwarnings("ignore", message=".*not in session.*")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("assignments", nargs="*", help="folder names under solutions/ (default: all)")
    args = ap.parse_args(argv)
    names = args.assignments or sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
    load0 = os.getloadavg()
    print(f"{len(names)} solution{'s' * (len(names) != 1)}, one at a time, 1 worker, sandboxed; "
          f"{os.cpu_count()} CPU cores; load average {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f} at start; "
          f"budget {BUDGET_S:.0f} s each")
    print(f"{'assignment':<24} {'points':>9} {'graded in':>10} {'/ budget':>9}  wall")
    bad = 0
    t_all = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        r = grade(name, {"solution": solution_of(name)}, workers=1)["solution"]
        wall = time.perf_counter() - t0
        full = r.status != "failed" and r.total == r.max_total > 0 and not r.flags
        bad += not full
        note = "" if full else f"  NOT FULL MARKS (status {r.status}, flags {r.flags})"
        print(f"{name:<24} {r.total:>4g}/{r.max_total:<4g} {r.seconds:>8.1f} s {r.seconds / BUDGET_S:>8.2f}x"
              f"  {wall:.1f} s{note}", flush=True)
    load1 = os.getloadavg()
    print(f"total {time.perf_counter() - t_all:.0f} s; "
          f"load average {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f} at end")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
