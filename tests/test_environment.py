"""The environment files agree: environment.yml pins what requirements.txt pins, and the lock covers both."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip().lstrip("- ").strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def test_environment_yml_has_the_same_pins_as_requirements():
    """Check that every pin of requirements.txt appears, identical, in environment.yml's pip section."""
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env = _pins((ROOT / "environment.yml").read_text().splitlines())
    assert "torch" in req and req["torch"] == "2.13.0", "torch must stay pinned to the CPU wheel on disk (2.13.0)"
    assert req["jupyter-book"].startswith("1."), "Jupyter Book 2 fetches its theme online and cannot build here"
    assert env == req, {k: (req.get(k), env.get(k)) for k in set(req) | set(env) if req.get(k) != env.get(k)}


def test_lock_covers_every_requirement():
    """Check that constraints.txt (the full lock) pins each direct requirement to the same version."""
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    lock = _pins((ROOT / "constraints.txt").read_text().splitlines())
    for name, version in req.items():
        assert name in lock, f"{name} missing from constraints.txt"
        assert lock[name].split("+")[0] == version, f"{name}: requirements {version} vs lock {lock[name]}"
