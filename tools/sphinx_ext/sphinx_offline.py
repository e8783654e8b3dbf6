"""Sphinx extension: make sure the site serves its own front-end assets, and that no page asks a CDN.

Loaded by _config.yml (``sphinx.local_extensions``: this folder goes on sys.path). At start it checks that ``site_assets/vendor`` holds
plotly.js, require.js, the widget manager and MathJax (made by ``make vendor``); at the end it scans every page
for scripts or stylesheets loaded from another host and fails the build, naming the page, if it finds one.
"""

from __future__ import annotations

import re
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

REQUIRED = ["plotly.min.js", "require.min.js", "html-manager/embed-amd.js", "mathjax/tex-chtml.js"]
# <script src="http..."> or <link href="http..."> pointing at another host (links in text are fine)
_REMOTE = re.compile(r"<(?:script[^>]*\ssrc|link[^>]*\shref)=[\"'](https?:)?//(?!127\.0\.0\.1|localhost)[^\"']+",
                     re.I)


def _check_assets(app: Sphinx) -> None:
    vendor = Path(app.confdir) / "site_assets" / "vendor"
    missing = [p for p in REQUIRED if not (vendor / p).exists()]
    if missing:
        raise ExtensionError(
            f"site assets missing in {vendor}: {', '.join(missing)}. Run `make vendor` (needs npm) or `make book`, "
            "which does it for you.")


def _scan_output(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    for page in sorted(outdir.rglob("*.html")):
        if "_static" in page.parts or "vendor" in page.parts:
            continue
        text = page.read_text(encoding="utf-8", errors="replace")
        for m in _REMOTE.finditer(text):
            logger.warning("page %s loads %s from another host; the site must work offline",
                           page.relative_to(outdir), m.group(0)[:160], type="week7", subtype="offline")


def _dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """sphinx-thebe's inline config script is added twice under Jupyter Book 1, which throws
    "Identifier 'THEBE_JS_URL' has already been declared" in every page: keep each script once."""
    seen, kept = set(), []
    for js in context.get("script_files", []):
        attrs = getattr(js, "attributes", None) or {}
        key = (getattr(js, "filename", str(js)) or "", tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    context["script_files"] = kept


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", _check_assets)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("build-finished", _scan_output)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
