"""week7.backends and week7.serve: the endpoint client against a local OpenAI-compatible server of a family model.

The server runs in a thread on 127.0.0.1 (a free port) for the module and is stopped at the end. Every check compares
what comes through HTTP with what the same model generates in-process, so the protocol path is tested, not mocked.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request

import pytest

from week7 import zoo
from week7.backends import BackendError, LocalBackend, OpenAIBackend, get_backend
from week7.serve import DRAIN_LIMIT_BYTES, MAX_BODY_BYTES, start_server

PROMPTS = ["123+489=", "very dull movie -> ", "red cat sees dog => ", "d=7 q=3 b=d m=q; b="]
KEY = "sk-test-week7"


@pytest.fixture(scope="module")
def smallest() -> str:
    names = [str(n) for n in zoo.list_models()["name"]]
    assert names, "no family model is shipped: the backend tests need one (see week7.zoo)"
    return names[0]


@pytest.fixture(scope="module")
def local(smallest) -> LocalBackend:
    return get_backend(f"family:{smallest}")


@pytest.fixture(scope="module")
def server(local):
    srv, url = start_server(local, api_key=KEY)
    yield url
    srv.shutdown()
    srv.server_close()


def _post(url: str, body: bytes | dict, key: str | None = KEY) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.mark.parametrize("mode", ["completions", "chat"])
def test_greedy_over_http_equals_in_process(local, server, smallest, mode):
    client = OpenAIBackend(smallest, base_url=server, api_key=KEY, mode=mode, retries=0)
    want = local.generate(PROMPTS, max_new_tokens=12)
    got = client.generate(PROMPTS, max_new_tokens=12)
    assert got == want
    assert all(isinstance(g, str) for g in got)
    assert client.stats["prompts"] == len(PROMPTS) and client.stats["generated_tokens"] == sum(map(len, want))


def test_sampling_is_seeded_and_n_gives_several_choices(server, smallest):
    body = {"model": smallest, "prompt": "123+489:", "max_tokens": 20, "temperature": 1.0, "seed": 5, "n": 4}
    s1, r1 = _post(server + "/completions", body)
    s2, r2 = _post(server + "/completions", body)
    assert s1 == s2 == 200
    texts = [c["text"] for c in r1["choices"]]
    assert len(texts) == 4 and texts == [c["text"] for c in r2["choices"]], "same seed, same samples"
    assert r1["usage"]["completion_tokens"] == sum(len(t) for t in texts)  # one token per character
    s3, r3 = _post(server + "/completions", {**body, "seed": 6})
    assert s3 == 200 and [c["text"] for c in r3["choices"]] != texts, "another seed, other samples"


def test_stop_strings_and_chat_shape(server, smallest):
    s, r = _post(server + "/chat/completions", {"model": smallest, "max_tokens": 30, "temperature": 0,
                                                "messages": [{"role": "user", "content": "very dull movie -> "}],
                                                "stop": ["\n"]})
    assert s == 200 and r["object"] == "chat.completion"
    msg = r["choices"][0]["message"]
    assert msg["role"] == "assistant" and "\n" not in msg["content"]


@pytest.mark.parametrize("body, status, words", [
    (b"{not json", 400, "not valid JSON"),
    ({"model": "m"}, 400, "prompt"),
    ({"prompt": "1+1=", "max_tokens": 100000}, 400, "max_tokens"),
    ({"prompt": "1+1=", "temperature": "hot"}, 400, "temperature"),
    ({"prompt": "1+1=", "n": 99}, 400, "'n'"),
    ({"prompt": "1+1=", "stream": True}, 400, "stream"),
    ({"prompt": "x" * 20_000}, 413, "limit"),
])
def test_bad_requests_get_clear_errors(server, body, status, words):
    s, r = _post(server + "/completions", body)
    assert s == status, r
    assert words in r["error"]["message"]


def test_limits_auth_and_routes(server):
    for _ in range(3):  # the server drains a moderately oversized body, so the client sees the 413, not EPIPE
        s, r = _post(server + "/completions", b"x" * (MAX_BODY_BYTES + 1))
        assert s == 413 and "limit" in r["error"]["message"]
    # a claimed length far past the drain limit is refused from the header alone, nothing is read
    host, port = urllib.parse.urlsplit(server).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/v1/completions")
    conn.putheader("Content-Length", str(DRAIN_LIMIT_BYTES * 100))
    conn.putheader("Authorization", f"Bearer {KEY}")
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and b"limit" in resp.read()
    conn.close()
    s, r = _post(server + "/completions", {"prompt": "1+1="}, key="wrong")
    assert s == 401 and "API key" in r["error"]["message"]
    s, r = _post(server + "/embeddings", {"input": "x"})
    assert s == 404
    with urllib.request.urlopen(server + "/models", timeout=10) as resp:
        assert json.loads(resp.read())["data"][0]["object"] == "model"


def test_client_errors_name_the_fix(server, smallest, monkeypatch):
    with pytest.raises(BackendError, match="OPENAI_API_KEY"):
        OpenAIBackend(smallest, base_url=server, api_key="wrong", retries=0).generate(["1+1="])
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with pytest.raises(BackendError, match="OPENAI_BASE_URL"):
        OpenAIBackend(smallest, base_url=dead, retries=0, timeout=5).generate(["1+1="])
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(BackendError, match="OPENAI_BASE_URL"):
        get_backend("openai:some-model")
    with pytest.raises(TypeError, match="list of strings"):
        OpenAIBackend(smallest, base_url=server).generate("1+1=")


def test_environment_switch(server, smallest, monkeypatch):
    monkeypatch.setenv("W7_BACKEND", f"openai:{smallest}")
    monkeypatch.setenv("OPENAI_BASE_URL", server)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("W7_OPENAI_MODE", "completions")
    b = get_backend()
    assert isinstance(b, OpenAIBackend) and b.mode == "completions" and b.name == f"openai:{smallest}"
    assert b.generate(["123+489="], max_new_tokens=5) == get_backend(f"family:{smallest}").generate(
        ["123+489="], max_new_tokens=5)
    monkeypatch.setenv("W7_BACKEND", f"family:{smallest}")
    assert isinstance(get_backend(), LocalBackend)
    for bad in ["nonsense", "gpu:thing", "family:not-a-model"]:
        monkeypatch.setenv("W7_BACKEND", bad)
        with pytest.raises(BackendError):
            get_backend()
    monkeypatch.setenv("W7_BACKEND", f"openai:{smallest}")
    monkeypatch.setenv("W7_OPENAI_MODE", "stream")
    with pytest.raises(BackendError, match="W7_OPENAI_MODE"):
        get_backend()


# -- one route from a model name to text: hf:<folder> and family:<name> load through week7.zoo.load ---------------
def test_hub_backend_loads_through_the_one_loader(smallest, local, tmp_path):
    """Check that an hf: backend on a copy of a family model loads like the family (float32, left padding, its
    checksums checked) and generates the same text; a corrupted copy is refused with the loader's message."""
    import shutil

    import torch

    copy = tmp_path / smallest
    shutil.copytree(zoo.model_dir(smallest), copy)
    hub = get_backend(f"hf:{copy}")
    assert hub.name == f"hf:{copy}"
    assert next(hub.model.parameters()).dtype == torch.float32 and hub.tokenizer.padding_side == "left"
    assert hub.generate(PROMPTS, max_new_tokens=8) == local.generate(PROMPTS, max_new_tokens=8)
    weights = next(p for p in copy.iterdir() if p.suffix == ".safetensors")
    weights.write_bytes(weights.read_bytes()[:-64])
    with pytest.raises(BackendError, match=r"W7_BACKEND") as err:
        get_backend(f"hf:{copy}")
    assert isinstance(err.value.__cause__, zoo.ChecksumError)


def test_hub_backend_offline_says_what_to_do(monkeypatch):
    """Check that a hub name with no hub gives the loader's message (HF_HUB_OFFLINE) and the switch back."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendError, match=r"HF_HUB_OFFLINE is set.*W7_BACKEND") as err:
        get_backend("hf:week7-no-such-org/no-such-model")
    assert isinstance(err.value.__cause__, zoo.HubUnavailableError)
