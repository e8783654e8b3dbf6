"""The book's offline extension (tools/sphinx_ext/sphinx_offline.py): the book finds it where _config.yml says;
missing assets stop the build with a fix; remote scripts are caught; scripts deduped."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from sphinx.builders.html._assets import _JavaScript
from sphinx.errors import ExtensionError

ROOT = Path(__file__).resolve().parents[1]


def _local_extensions() -> dict[str, str]:
    conf = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    return (conf.get("sphinx") or {}).get("local_extensions") or {}


def _load(name: str, folder: str):
    """Import the extension the way Jupyter Book does: the folder, relative to _config.yml, on sys.path."""
    path = (ROOT / folder).resolve()
    spec = importlib.util.spec_from_file_location(name, path / f"{name}.py")
    assert spec is not None and spec.loader is not None, f"{name}.py not found in {path}"
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


so = _load("sphinx_offline", _local_extensions().get("sphinx_offline", "tools/sphinx_ext"))


def test_book_config_loads_the_extension_from_tools():
    """Check that Jupyter Book's own config reader puts the extension in Sphinx's list and its folder (under
    tools/, outside the course package) on sys.path, and that Sphinx can import it from there."""
    from jupyter_book.config import get_final_config

    assert "sphinx_offline" in _local_extensions(), "_config.yml lists no local extension sphinx_offline"
    before = list(sys.path)
    try:
        conf, _ = get_final_config(user_yaml=ROOT / "_config.yml", sourcedir=ROOT,
                                   cli_config={"latex_individualpages": False})
        added = [p for p in sys.path if p not in before]
        assert "sphinx_offline" in conf["extensions"]
        assert added == [(ROOT / "tools" / "sphinx_ext").as_posix()], added
        sys.modules.pop("sphinx_offline", None)
        mod = importlib.import_module("sphinx_offline")
        assert Path(mod.__file__).resolve().parent == ROOT / "tools" / "sphinx_ext"
        assert callable(mod.setup)
    finally:
        sys.path[:] = before
        sys.modules.pop("sphinx_offline", None)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("week7.sphinx_offline")


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
