"""Copy the front-end assets the site serves itself into site_assets/vendor/ (idempotent).

Sources: the npm packages pinned in tools/vendor/package.json (require.js, the Jupyter widget manager, MathJax 3)
and plotly.min.js from the installed plotly Python package. Run by `make vendor` (and so by `make book` and
`make test`). Why: by default these load from CDNs, so an offline reader sees blank widgets and raw LaTeX.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NPM_DIR = ROOT / "tools" / "vendor"
OUT = ROOT / "site_assets" / "vendor"
STAMP = OUT / ".stamp"


def die(msg: str) -> None:
    print(f"vendor_assets: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def npm_install() -> Path:
    modules = NPM_DIR / "node_modules"
    lock = NPM_DIR / "package-lock.json"
    if modules.is_dir() and (modules / ".package-lock.json").exists():
        return modules
    npm = shutil.which("npm")
    if npm is None:
        die("npm is not installed. Install Node.js and npm (Debian: `apt-get install -y nodejs npm`), then run "
            "`make vendor` again.")
    cmd = [npm, "ci" if lock.exists() else "install", "--no-audit", "--no-fund", "--ignore-scripts"]
    print(f"vendor_assets: {' '.join(cmd)} (in {NPM_DIR.relative_to(ROOT)})", flush=True)
    r = subprocess.run(cmd, cwd=NPM_DIR)
    if r.returncode != 0:
        die(f"`{' '.join(cmd)}` failed (exit {r.returncode}); is the npm registry reachable?")
    return modules


def fingerprint() -> str:
    import plotly

    h = hashlib.sha256()
    h.update((NPM_DIR / "package.json").read_bytes())
    h.update(plotly.__version__.encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()


def main() -> int:
    want = fingerprint()
    if STAMP.exists() and STAMP.read_text().strip() == want:
        print("vendor_assets: up to date")
        return 0
    modules = npm_install()
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    # require.js
    shutil.copy2(modules / "requirejs" / "require.js", OUT / "require.min.js")
    # the widget manager (AMD bundle and the fonts it references), without source maps
    hm_src = modules / "@jupyter-widgets" / "html-manager" / "dist"
    hm = OUT / "html-manager"
    shutil.copytree(hm_src, hm, ignore=shutil.ignore_patterns("*.map", "embed.js", "*.embed.js", "libembed-amd.js"))
    # MathJax 3: the combined TeX->CHTML component, its fonts and lazily loaded extensions; no speech maps
    mj_src = modules / "mathjax" / "es5"
    shutil.copytree(mj_src, OUT / "mathjax", ignore=shutil.ignore_patterns("sre", "*.map", "mml-*", "tex-svg*",
                                                                          "tex-mml-svg*", "output/svg*"))
    # plotly.js from the plotly Python package (same version the figures were made with)
    import plotly

    pjs = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not pjs.exists():
        die(f"plotly.min.js not found at {pjs}; reinstall plotly")
    shutil.copy2(pjs, OUT / "plotly.min.js")
    versions = {"plotly.py": plotly.__version__}
    for pkg in ("requirejs", "@jupyter-widgets/html-manager", "mathjax"):
        versions[pkg] = json.loads((modules / pkg / "package.json").read_text())["version"]
    (OUT / "VERSIONS.json").write_text(json.dumps(versions, indent=2) + "\n")
    STAMP.write_text(want + "\n")
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"vendor_assets: wrote {OUT.relative_to(ROOT)} ({size / 1e6:.1f} MB): {versions}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
