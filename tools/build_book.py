"""Build the site: `jupyter-book build` with warnings as errors, then check the output. Used by `make book`.

A chapter cell that raises, or any Sphinx warning, fails the build; the message names the page (and the cell).
Execution is cached in _build/.jupyter_cache, so an unchanged chapter is not executed again.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def invalidate_cache_if_package_changed(build_dir: Path) -> None:
    """Chapters import the course package and its data: when those change, cached outputs are stale.

    jupyter-cache keys a chapter on its own code only, so we keep a fingerprint of src/ (code, data, models) and
    drop the execution cache when it differs.
    """
    import hashlib
    import shutil

    h = hashlib.sha256()
    for p in sorted((ROOT / "src").rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(ROOT)).encode())
            h.update(p.read_bytes())
    want = h.hexdigest()
    stamp = build_dir / ".package-fingerprint"
    cache = build_dir / ".jupyter_cache"
    if cache.exists() and (not stamp.exists() or stamp.read_text() != want):
        print("build_book: the course package changed since the last build; executing every chapter again")
        shutil.rmtree(cache)
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(want)


def build(root: Path = ROOT, out: Path | None = None, quiet: bool = False, toc: Path | None = None) -> tuple[int, str]:
    """Run jupyter-book on `root`; return (exit code, combined log). `out` is the build dir (default _build)."""
    invalidate_cache_if_package_changed((out or root) / "_build")  # jupyter-book writes <out>/_build/
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(root), "--warningiserror", "--nitpick",
           "--keep-going", "--builder", "html"]
    if out is not None:
        cmd += ["--path-output", str(out)]
    if toc is not None:
        cmd += ["--toc", str(toc)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=root)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = ANSI.sub("", line)
        lines.append(line)
        if not quiet and (re.search(r"(WARNING|ERROR|executing|reading sources|writing output|build succeeded|"
                                    r"Executing|Finished|Traceback|\berror\b)", line, re.I)):
            print(line, end="", flush=True)
    code = proc.wait()
    return code, "".join(lines)


def failures(log: str) -> list[str]:
    """Sphinx's warnings and errors in a build log ("<page>:<line>: WARNING: ..."), one per entry.

    Lines that other programs log in Python's default format ("ERROR:tornado.general:...", e.g. a kernel's
    shutdown race, printed after its chapter executed fine) are not Sphinx's: a chapter that really fails
    makes Sphinx warn (and exit non-zero) on its own.
    """
    return [ln.strip() for ln in log.splitlines() if re.search(r"\b(WARNING|ERROR): ", ln)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=None, help="build directory (default: _build)")
    ap.add_argument("--toc", type=Path, default=None, help="another table of contents (default: _toc.yml), to "
                    "build a subset of the pages while writing them")
    args = ap.parse_args()
    t0 = time.time()
    code, log = build(out=args.out, toc=args.toc)
    dt = time.time() - t0
    bad = failures(log)
    if code != 0 or bad:
        print(f"\nbuild_book: FAILED after {dt:.0f} s. {len(bad)} warning(s)/error(s), each names its page:",
              file=sys.stderr)
        for b in bad[:50]:
            print("  " + b, file=sys.stderr)
        reports = sorted(((args.out or ROOT) / "_build").glob("html/reports/**/*.err.log"))
        for r in reports:
            print(f"\n--- execution report {r.relative_to(ROOT) if r.is_relative_to(ROOT) else r} ---\n"
                  + r.read_text()[-4000:], file=sys.stderr)
        return 1
    html = (args.out or ROOT) / "_build" / "html" / "index.html"
    print(f"\nbuild_book: OK in {dt:.0f} s; open {html.relative_to(ROOT) if html.is_relative_to(ROOT) else html}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
