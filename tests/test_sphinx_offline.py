"""week7.sphinx_offline: missing assets stop the build with a fix; remote scripts are caught; scripts deduped."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sphinx.builders.html._assets import _JavaScript
from sphinx.errors import ExtensionError

from week7 import sphinx_offline as so


def test_missing_assets_name_the_fix(tmp_path):
    """Check that a book without site_assets/vendor fails with a message saying to run `make vendor`."""
    (tmp_path / "site_assets" / "vendor").mkdir(parents=True)
    (tmp_path / "site_assets" / "vendor" / "plotly.min.js").write_text("x")
    with pytest.raises(ExtensionError, match=r"require\.min\.js.*make vendor"):
        so._check_assets(SimpleNamespace(confdir=str(tmp_path)))


@pytest.mark.parametrize("tag, remote", [
    ('<script src="https://cdn.jsdelivr.net/npm/x.js"></script>', True),
    ('<script async src="//unpkg.com/thebe"></script>', True),
    ('<link rel="stylesheet" href="https://fonts.googleapis.com/css"/>', True),
    ('<script src="../_static/vendor/plotly.min.js"></script>', False),
    ('<a href="https://arxiv.org/abs/2005.14165">paper</a>', False),
    ('<script src="http://127.0.0.1:8000/x.js"></script>', False),
])
def test_remote_asset_pattern(tag, remote):
    """Check that scripts and stylesheets from other hosts are flagged, plain links and local files are not."""
    assert bool(so._REMOTE.search(tag)) is remote


def test_duplicate_inline_scripts_are_dropped():
    """Check that the same inline script added twice (filename None and '') is kept once, order preserved."""
    body = 'const THEBE_JS_URL = "x"'
    ctx = {"script_files": [_JavaScript("a.js"), _JavaScript(None, body=body), _JavaScript("b.js"),
                            _JavaScript("", body=body), _JavaScript("a.js")]}
    so._dedupe_scripts(None, "p", "page.html", ctx, None)
    assert [(j.filename or "", j.attributes.get("body")) for j in ctx["script_files"]] == [
        ("a.js", None), ("", body), ("b.js", None)]
