"""The static site: it builds from scratch without a warning, and every page works offline in a real browser.

The browser test opens each page in Debian's chromium (through Playwright) with every request to another host
blocked, and checks: no console error, every plotly figure drew an svg, every widget rendered, math typeset,
nothing asked another host. A screenshot of each page goes to test-artifacts/site/.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = os.environ.get("W7_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def pages(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html")
                  if not ({"_static", "_sources", "reports", "_images"} & set(p.parts)) and p.name not in
                  {"search.html", "genindex.html"})


def test_site_builds_from_scratch(built_site: Path):
    """Check that a clean build has the intro, the chapters in the toc, and the vendored assets."""
    assert (built_site / "index.html").exists() or (built_site / "intro.html").exists()
    toc = (Path(__file__).resolve().parents[1] / "_toc.yml").read_text()
    for f in re.findall(r"file:\s*(\S+)", toc):
        assert (built_site / f"{f}.html").exists(), f"page for {f} missing from the build"
    for asset in ("plotly.min.js", "require.min.js", "html-manager/embed-amd.js", "mathjax/tex-chtml.js"):
        assert (built_site / "_static" / "vendor" / asset).exists(), asset
    # solution and hidden-test markers never reach the site
    for p in built_site.rglob("*"):
        if p.is_file() and p.suffix in {".html", ".ipynb", ".md", ".txt"}:
            text = p.read_text(errors="replace")
            assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, p


@pytest.fixture(scope="module")
def server(built_site: Path):
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


@pytest.mark.browser
def test_every_page_renders_offline(built_site: Path, server: str, artifacts: Path):
    """Open every page with other hosts blocked: no console errors, figures, widgets and math all drawn."""
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run `make test` (it installs Debian's chromium) or "
                    "`apt-get install -y chromium`, or set W7_CHROMIUM=/path/to/chrome")
    from playwright.sync_api import sync_playwright

    shots = artifacts / "site"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    problems: list[str] = []
    checked = {"figures": 0, "widgets": 0, "math": 0}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"])
        try:
            for rel in pages(built_site):
                page_problems = _check_page(browser, f"{server}/{rel}", shots / (rel.replace("/", "__") + ".png"),
                                            checked)
                problems += [f"{rel}: {p}" for p in page_problems]
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    assert checked["figures"] >= 1 and checked["widgets"] >= 1 and checked["math"] >= 1, checked
    assert checked.get("tables", 0) >= 1, "no printed table found on any page: the padding check saw nothing"


def _check_page(browser, url: str, shot: Path, checked: dict) -> list[str]:
    host = urlparse(url).netloc
    problems: list[str] = []
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()

    def route(r):
        if urlparse(r.request.url).netloc not in (host, "") and not r.request.url.startswith("data:"):
            problems.append(f"asked another host: {r.request.url[:120]}")
            return r.abort()
        return r.continue_()

    page.route("**/*", route)
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text[:200]}")
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    page.on("response", lambda r: problems.append(f"HTTP {r.status} for {r.url[:160]}") if r.status >= 400 else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {str(e)[:200]}"))
    page.goto(url, wait_until="load")
    try:  # best effort: a page that keeps a connection open is not an error; the checks below wait themselves
        page.wait_for_load_state("networkidle", timeout=5000)
    except Exception:
        pass
    n_fig = page.locator("div.w7-plotly").count()
    if n_fig:
        page.wait_for_function("() => [...document.querySelectorAll('div.w7-plotly')]"
                               ".every(d => d.querySelector('svg.main-svg'))", timeout=20000)
        checked["figures"] += n_fig
    n_widget = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
    if n_widget:
        try:
            page.wait_for_function(
                "n => document.querySelectorAll('.jupyter-widgets.widget-container, .jupyter-widgets.widget-inline-hbox,"
                " .jupyter-widgets.widget-html, .jupyter-widgets.widget-box').length >= n", arg=n_widget,
                timeout=20000)
            checked["widgets"] += n_widget
        except Exception:
            problems.append(f"{n_widget} widget view(s) but none rendered")
    n_math = page.locator("div.math, span.math").count()
    if n_math:
        try:
            page.wait_for_function("() => document.querySelectorAll('mjx-container').length > 0", timeout=20000)
            checked["math"] += n_math
        except Exception:
            problems.append(f"{n_math} formula(s) but MathJax typeset none")
    pads = page.evaluate("() => [...document.querySelectorAll('.cell_output table td')].slice(0, 50)"
                         ".map(td => parseFloat(getComputedStyle(td).paddingLeft))")
    if pads and min(pads) < 4:  # columns would run together (the family table of chapter 04 did)
        problems.append(f"a printed table's cells have {min(pads)} px of padding; w7-tables.css is not applied")
    checked["tables"] = checked.get("tables", 0) + len(pads)
    page.wait_for_timeout(300)  # late requests (fonts, lazy MathJax parts) still go through the route check
    page.screenshot(path=str(shot), full_page=True)
    ctx.close()
    return problems
