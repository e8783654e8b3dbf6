"""Clean build time against cached rebuild time of the site, measured side by side in one run.

    .venv/bin/python benchmarks/bench_book_build.py [--out /tmp/bench-book]

The clean build executes every chapter (fresh execution cache); the rebuild reuses the cache and only re-renders.
Prints both times and their ratio. (Times depend on the machine and its load; the ratio is the number to read.)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.build_book import build, failures  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("/tmp/w7-bench-book"))
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    times = {}
    for label in ("clean", "cached"):
        t0 = time.perf_counter()
        code, log = build(out=args.out, quiet=True)
        times[label] = time.perf_counter() - t0
        if code != 0 or failures(log):
            print(f"build failed ({label}):\n" + "\n".join(failures(log)[:20]), file=sys.stderr)
            return 1
        print(f"{label:>7} build: {times[label]:7.1f} s", flush=True)
    print(f"cached / clean: {times['cached'] / times['clean']:.3f}  (clean is {times['clean'] / times['cached']:.1f}x "
          "slower)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
