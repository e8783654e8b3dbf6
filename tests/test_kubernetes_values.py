"""The Kubernetes recipe (deploy/kubernetes): its values validate against Zero to JupyterHub's own schema, and its
hub configuration loads into real JupyterHub and KubeSpawner objects that give each role what the course needs.

Helm merges a values file over the chart's defaults before it validates, so the chart's `required` lists (met by
those defaults) are not applied to our file alone; every other rule of the schema is (types, enums, and
`additionalProperties: false`, which catches a misspelt key).
"""

from __future__ import annotations

import asyncio
import copy
import json
import types
from pathlib import Path

import jsonschema
import pytest
import yaml
from traitlets.config import Config, PyFileConfigLoader

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "kubernetes"
VALUES = K8S / "values.yaml"
SCHEMA = K8S / "z2jh" / "values.schema.yaml"


def _without_required(node):
    if isinstance(node, dict):
        return {k: _without_required(v) for k, v in node.items() if k != "required"}
    if isinstance(node, list):
        return [_without_required(v) for v in node]
    return node


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


@pytest.fixture(scope="module")
def validator():
    schema = _without_required(yaml.safe_load(SCHEMA.read_text()))
    return jsonschema.Draft7Validator(schema)


def test_values_validate_against_the_charts_schema(values, validator):
    errors = sorted(validator.iter_errors(values), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


@pytest.mark.parametrize("break_it, where", [
    (lambda v: v["singleuser"].__setitem__("memmory", {"limit": "2G"}), "a misspelt key"),
    (lambda v: v["hub"]["db"].__setitem__("type", "postgresql"), "a database type the chart does not know"),
    (lambda v: v["cull"].__setitem__("timeout", "an hour"), "a culler timeout that is not a number"),
])
def test_the_schema_check_can_fail(values, validator, break_it, where):
    bad = copy.deepcopy(values)
    break_it(bad)
    assert list(validator.iter_errors(bad)), f"{where} passed the schema"


def _hub_config(values: dict) -> Config:
    """What the chart's jupyterhub_config.py does with hub.config and hub.extraConfig."""
    cfg = Config()
    for section, settings in values["hub"]["config"].items():
        cfg[section] = Config(settings)
    for name, snippet in sorted(values["hub"]["extraConfig"].items()):
        exec(compile(snippet, f"hub.extraConfig.{name}", "exec"), {"c": cfg, "get_config": lambda: cfg})
    return cfg


def _spawner(cfg: Config, tmp_path: Path, monkeypatch, user: str, groups: list[str]):
    from kubespawner import KubeSpawner

    kubeconfig = tmp_path / "kubeconfig"  # KubeSpawner loads a cluster configuration when it is made; none is used
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
        "users": [{"name": "t", "user": {"token": "x"}}]}))
    import kubernetes_asyncio.config.kube_config as kc

    monkeypatch.setattr(kc, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))  # read once, at import
    u = types.SimpleNamespace(name=user, id=1, url=f"/user/{user}/",
                              groups=[types.SimpleNamespace(name=g) for g in groups])

    async def make():  # its API client is made on the running event loop, and closed when that loop ends
        return KubeSpawner(config=cfg, user=u, _mock=True)

    return asyncio.run(make())


def test_hub_config_loads_into_jupyterhub_and_kubespawner(values, tmp_path, monkeypatch):
    from jupyterhub.app import JupyterHub

    cfg = _hub_config(values)
    hub = JupyterHub(config=cfg)
    assert set(hub.load_groups) == {"instructors", "students"}
    assert hub.load_groups["instructors"]["users"], "name the instructors (they get the formgrader)"
    assert values["hub"]["db"]["type"] == "postgres" and values["hub"]["db"]["url"].startswith("postgresql")
    sp = _spawner(cfg, tmp_path, monkeypatch, "alice", ["students"])
    assert sp.start_timeout == 300 and callable(sp.pre_spawn_hook)
    auth = hub.authenticator_class(config=cfg)
    assert type(auth).__name__ == "GenericOAuthenticator" and auth.manage_groups


def test_every_hub_config_key_is_a_real_setting(values):
    """hub.config is free-form for the schema: check each key against the configurable traits of its class."""
    from jupyterhub.app import JupyterHub
    from jupyterhub.auth import Authenticator
    from kubespawner import KubeSpawner
    from oauthenticator.generic import GenericOAuthenticator

    classes = {c.__name__: c for c in (JupyterHub, Authenticator, KubeSpawner, GenericOAuthenticator)}
    for section, settings in values["hub"]["config"].items():
        assert section in classes, f"hub.config.{section}: not a class this recipe configures"
        known = classes[section].class_traits(config=True)
        unknown = sorted(set(settings) - set(known))
        assert not unknown, f"hub.config.{section}: {unknown} are not settings of {section}"


def test_roles_at_spawn(values, tmp_path, monkeypatch):
    """Students: the student Jupyter settings, no course volume; instructors: the formgrader on the workspace."""
    cfg = _hub_config(values)
    student = _spawner(cfg, tmp_path, monkeypatch, "alice", ["students"])
    student.pre_spawn_hook(student)
    assert student.environment["JUPYTER_CONFIG_PATH"] == "/etc/jupyter/week7-student"
    assert "W7_WORKSPACE" not in student.environment
    assert not any(v.get("name") == "week7-course" for v in student.volumes)

    prof = _spawner(cfg, tmp_path, monkeypatch, "prof-a", ["instructors"])
    prof.pre_spawn_hook(prof)
    assert prof.environment["JUPYTER_CONFIG_PATH"] == "/etc/jupyter/week7-instructor"
    assert prof.environment["W7_WORKSPACE"] == "/srv/week7/workspace"
    mounts = {m["name"]: m["mountPath"] for m in prof.volume_mounts}
    assert mounts.get("week7-course") == "/srv/week7"
    assert prof.environment["W7_WORKSPACE"].startswith(mounts["week7-course"] + "/")


def test_limits_culler_and_image(values):
    from jupyterhub.traitlets import ByteSpecification

    su = values["singleuser"]
    parse = ByteSpecification().validate
    limit, guarantee = parse(None, su["memory"]["limit"]), parse(None, su["memory"]["guarantee"])
    peak = 1.24e9  # the largest measured exercise run (05, with its gloo ranks), resident bytes
    assert limit >= 1.5 * peak and guarantee <= limit, (limit, guarantee)
    assert float(su["cpu"]["limit"]) >= 2, "the exercises' time budgets are measured on 2 cores"
    assert values["cull"]["enabled"] and 0 < values["cull"]["timeout"] <= 4 * 3600
    assert su["extraEnv"]["HF_HUB_OFFLINE"] == "1"
    dockerfile = (K8S / "Dockerfile").read_text()
    assert "requirements.txt" in dockerfile and "constraints.txt" in dockerfile, "the image uses the pinned env"
    assert "COPY solutions" not in dockerfile and "COPY . " not in dockerfile, "solutions never go into the image"


@pytest.mark.parametrize("role", ["student", "instructor"])
def test_role_settings_match_the_single_server_recipe(role):
    """The image's per-role Jupyter settings are the ones deploy/jupyterhub writes for the same role."""
    ns: dict = {"get_config": Config}
    src = (ROOT / "deploy" / "jupyterhub" / "jupyterhub_config.py").read_text()
    disabled = src.split("STUDENT_DISABLED_LAB = ", 1)[1].split("\n\n", 1)[0]
    student_disabled = eval(disabled, ns)  # a list literal of extension names
    lab = json.loads((K8S / "image" / f"week7-{role}" / "labconfig" / "page_config.json").read_text())
    server = json.loads((K8S / "image" / f"week7-{role}" / "jupyter_server_config.json").read_text())
    on = role == "instructor"
    assert sorted(k for k, v in lab["disabledExtensions"].items() if v) == ([] if on else sorted(student_disabled))
    assert server["ServerApp"]["jpserver_extensions"] == {"nbgrader.server_extensions.formgrader": on,
                                                          "nbgrader.server_extensions.course_list": on}
    # instructors' JupyterLab shows the formgrader in an iframe of their own server (JupyterHub's frame-ancestors
    # 'none' would blank it), as the single-server recipe writes; students keep the hub's default
    headers = server["ServerApp"].get("tornado_settings", {}).get("headers", {})
    assert headers == ({"Content-Security-Policy": "frame-ancestors 'self'"} if on else {})
    assert ("frame-ancestors 'self'" in src) and on == bool(headers)


def test_validate_cell_limit_is_the_autograders(monkeypatch):
    """Validate (nbgrader's Execute.timeout) stops a cell when the autograder would: the same 120 s, the same
    W7_CELL_TIMEOUT."""
    from autograder.settings import Settings

    for env in ({}, {"W7_CELL_TIMEOUT": "45"}):
        monkeypatch.delenv("W7_CELL_TIMEOUT", raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        ns: dict = {"get_config": lambda: ns["c"], "c": Config()}
        exec(compile((K8S / "image" / "week7_common.py").read_text(), "week7_common.py", "exec"), ns)
        assert ns["c"].Execute.timeout == Settings().cell_timeout_s == int(env.get("W7_CELL_TIMEOUT", 120))


def test_instructor_nbgrader_config_loads_the_workspace_config(tmp_path, monkeypatch):
    """The instructor's formgrader reads <workspace>/nbgrader_config.py: the command line's gradebook."""
    ws = tmp_path / "workspace"
    ws.mkdir()
    (ws / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.root = %r\nc.CourseDirectory.db_url = %r\n"
        % (str(ws), f"sqlite:///{ws}/gradebook.db"))
    etc = tmp_path / "etc-jupyter"  # the image's /etc/jupyter, laid out as the Dockerfile copies it
    (etc / "week7-instructor").mkdir(parents=True)
    common = (K8S / "image" / "week7_common.py").read_text()
    (etc / "week7_common.py").write_text(common)
    text = (K8S / "image" / "week7-instructor" / "nbgrader_config.py").read_text()
    (etc / "week7-instructor" / "nbgrader_config.py").write_text(text.replace("/etc/jupyter/", f"{etc}/"))
    monkeypatch.setenv("W7_WORKSPACE", str(ws))
    monkeypatch.delenv("W7_NGSHARE_URL", raising=False)
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(etc / "week7-instructor")).load_config()
    assert cfg.CourseDirectory.root == str(ws)
    assert cfg.CourseDirectory.db_url == f"sqlite:///{ws}/gradebook.db"
    assert cfg.CourseDirectory.course_id == "week7-advanced-transformers"
    assert cfg.Execute.timeout >= 120, "Validate must not stop the exercises' slow cells at nbgrader's 30 s"
