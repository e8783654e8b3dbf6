"""The hub configuration's nbgrader settings, without a hub: one workspace for the formgrader and the command line.

deploy/jupyterhub/jupyterhub_config.py is loaded as JupyterHub loads it (traitlets), with the W7_* variables of a
real server; the nbgrader configuration it writes for each role is loaded back as nbgrader would load it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from autograder.settings import Settings
from autograder.workspace import db_url

ROOT = Path(__file__).resolve().parents[1]
HUB_CONFIG = ROOT / "deploy" / "jupyterhub" / "jupyterhub_config.py"


def load_hub(monkeypatch, **env: str):
    """Load the hub configuration with these W7_* variables (and no others); return its namespace."""
    for k in ("W7_COURSE_ROOT", "W7_WORKSPACE", "W7_EXCHANGE", "W7_CELL_TIMEOUT", "W7_COURSE_ID", "W7_INSTRUCTORS",
              "W7_STUDENTS"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = PyFileConfigLoader(HUB_CONFIG.name, str(HUB_CONFIG.parent)).load_config()
    return cfg, cfg.Spawner.pre_spawn_hook.__globals__


def nbgrader_cfg(text: str) -> Config:
    """What nbgrader reads from a ~/.jupyter/nbgrader_config.py with this text."""
    ns = {"get_config": lambda: ns["c"], "c": Config()}
    exec(compile(text, "nbgrader_config.py", "exec"), ns)
    return ns["c"]


def test_instructor_formgrader_uses_the_command_lines_workspace(monkeypatch, tmp_path):
    """Check that the formgrader's course directory, gradebook, source and release are the autograder's for the
    same W7_COURSE_ROOT (workspace defaulting as the command line's) and for an explicit W7_WORKSPACE."""
    clone = tmp_path / "home" / "prof" / "week7"
    for env, workspace in (({}, clone / "workspace"), ({"W7_WORKSPACE": str(tmp_path / "home/prof/ws")},
                                                       tmp_path / "home" / "prof" / "ws")):
        _, hub = load_hub(monkeypatch, W7_COURSE_ROOT=str(clone), W7_EXCHANGE="/srv/x", **env)
        c = nbgrader_cfg(hub["nbgrader_config"](True))
        s = Settings(course_root=clone, workspace=workspace)  # what `python -m autograder` uses there
        assert c.CourseDirectory.root == str(s.workspace)
        assert c.CourseDirectory.db_url == db_url(s) == f"sqlite:///{workspace}/gradebook.db"
        assert c.CourseDirectory.source_directory == str(clone / "solutions")
        assert c.CourseDirectory.release_directory == str(clone / "exercises")
        assert c.Exchange.root == "/srv/x" and c.CourseDirectory.course_id == s.course_id
        # the formgrader's own Generate Feedback would show hidden tests and mark schemes: it refuses, saying why
        (guard,) = c.GenerateFeedback.preprocessors
        with pytest.raises(RuntimeError, match="python -m autograder feedback"):
            guard()
        # and the instructor's terminals get the same workspace for `python -m autograder ...`
        assert hub["instructor_env"]() == {"W7_WORKSPACE": str(workspace), "W7_EXCHANGE": "/srv/x",
                                           "W7_COURSE_ID": s.course_id}


def test_students_get_the_exchange_and_the_course_timeouts_only(monkeypatch, tmp_path):
    """Check that a student's nbgrader settings name no course directory or gradebook, and that Validate's
    per-cell limit is the autograder's (default and W7_CELL_TIMEOUT), not nbgrader's 30 s."""
    _, hub = load_hub(monkeypatch, W7_COURSE_ROOT=str(tmp_path / "week7"))
    student, instructor = (nbgrader_cfg(hub["nbgrader_config"](r)) for r in (False, True))
    assert "root" not in student.CourseDirectory and "db_url" not in student.CourseDirectory
    assert student.Exchange.root == instructor.Exchange.root == "/srv/nbgrader/exchange"
    assert student.Execute.timeout == instructor.Execute.timeout == Settings().cell_timeout_s > 30
    _, hub = load_hub(monkeypatch, W7_COURSE_ROOT=str(tmp_path / "week7"), W7_CELL_TIMEOUT="200")
    assert nbgrader_cfg(hub["nbgrader_config"](False)).Execute.timeout == 200


def test_without_a_course_clone_instructors_get_no_formgrader_course(monkeypatch):
    """Check that with neither W7_COURSE_ROOT nor W7_WORKSPACE nothing points the formgrader anywhere."""
    _, hub = load_hub(monkeypatch)
    assert "root" not in nbgrader_cfg(hub["nbgrader_config"](True)).CourseDirectory
    assert hub["instructor_env"]() == {}


def test_groups_come_from_the_variables(monkeypatch):
    """Check that W7_INSTRUCTORS and W7_STUDENTS become the hub's groups and its allowed users."""
    cfg, _ = load_hub(monkeypatch, W7_INSTRUCTORS="prof", W7_STUDENTS="alice,bob")
    assert cfg.JupyterHub.load_groups == {"instructors": {"users": ["prof"]}, "students": {"users": ["alice", "bob"]}}
    assert cfg.Authenticator.allowed_users == {"prof", "alice", "bob"}
