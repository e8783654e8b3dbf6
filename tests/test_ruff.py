"""ruff, configured in pyproject.toml, finds nothing in the repository's Python sources."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                           *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_ruff_is_clean():
    """Check that `ruff check` on the repository reports no finding (the message lists them)."""
    r = _ruff(".")
    assert r.returncode == 0, f"ruff check found problems (fix them or say why in pyproject.toml):\n{r.stdout}{r.stderr}"


def test_ruff_uses_the_project_rules_and_catches_a_finding(tmp_path):
    """Check that the project's configuration, applied to a file with an unused import and an undefined name,
    makes ruff fail and name both: the clean run above is a real check, not an empty rule set."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\n\ndef f():\n    return undefined_name\n")
    r = _ruff("--config", str(ROOT / "pyproject.toml"), str(bad), cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "F401" in r.stdout and "F821" in r.stdout, r.stdout
