"""Shared fixtures: the repository root, a built site (built once per run), artifacts folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
sys.path.insert(0, str(ROOT))  # `autograder` and `tools` are top-level folders of the repo
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """Build the whole site from scratch (fresh execution cache) once per test run; return its html folder.

    Set W7_SITE=/path/to/_build/html to test an existing build instead (handy while writing chapters).
    """
    if os.environ.get("W7_SITE"):
        site = Path(os.environ["W7_SITE"]).resolve()
        assert (site / "index.html").exists(), f"W7_SITE={site} holds no index.html"
        return site
    from tools.build_book import build, failures

    out = tmp_path_factory.mktemp("book")
    code, log = build(out=out, quiet=True)
    (ARTIFACTS).mkdir(exist_ok=True)
    (ARTIFACTS / "book-build.log").write_text(log)
    bad = failures(log)
    assert code == 0 and not bad, "the site did not build cleanly:\n" + "\n".join(bad[:30]) + "\n" + log[-3000:]
    return out / "_build" / "html"  # jupyter-book --path-output X writes X/_build/html


# --- time per stage (test file), printed at the end of every run so CI shows where its minutes go ---
_STAGE_TIMES: dict[str, float] = {}


def pytest_runtest_logreport(report):
    stage = report.nodeid.split("::", 1)[0]
    _STAGE_TIMES[stage] = _STAGE_TIMES.get(stage, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not _STAGE_TIMES:
        return
    terminalreporter.section("time per stage (test file)")
    for stage, secs in sorted(_STAGE_TIMES.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{secs:8.1f} s  {stage}")
    terminalreporter.write_line(f"{sum(_STAGE_TIMES.values()):8.1f} s  total")
