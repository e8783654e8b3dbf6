"""One switch for where generations come from: the course family, a hub model, or an OpenAI-compatible endpoint.

The exercises call ``backend.generate(prompts, ...)`` and never care which of the three answers. Offline, with no
configuration, the backend is a model of the course family (``week7.zoo``), so every notebook runs unchanged on a
laptop. A student with a hub or an API key sets one environment variable and runs the same cells on a real model.

Choose with ``get_backend(spec)`` or, when ``spec`` is None, the environment variable ``W7_BACKEND``:

==============================  =================================================================================
``family:<name>``               a model of the course family (``week7.zoo.list_models()``); the default
``hf:<hub name or local path>`` any causal LM that ``transformers`` loads (``hf:gpt2``, ``hf:EleutherAI/pythia-160m``)
``openai:<model>``              any OpenAI-compatible server: base URL from ``OPENAI_BASE_URL`` (for example
                                ``https://api.openai.com/v1`` or ``http://127.0.0.1:8000/v1``), key from
                                ``OPENAI_API_KEY`` (may be empty for a local server); ``W7_OPENAI_MODE`` is ``chat``
                                (``/chat/completions``, the default) or ``completions`` (``/completions``, raw text)
==============================  =================================================================================

The endpoint client uses only the standard library (``urllib``), bounds every request with a timeout, and retries
rate limits and server errors a few times. ``week7.serve`` is a small server that speaks the same protocol and
serves a family model; the tests run the client against it.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Sequence

ENV_BACKEND = "W7_BACKEND"
ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_API_KEY = "OPENAI_API_KEY"
ENV_MODE = "W7_OPENAI_MODE"


class BackendError(RuntimeError):
    """A backend could not be created or did not answer; the message says what to change."""


def _check_prompts(prompts: Sequence[str]) -> list[str]:
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings, not one string: wrap it as [prompt]")
    prompts = list(prompts)
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f"prompts[{i}] is a {type(p).__name__}, expected str")
    return prompts


@dataclass
class Backend:
    """The interface: ``generate`` returns one continuation (the new text only) per prompt."""

    name: str
    stats: dict[str, int] = field(default_factory=lambda: {"calls": 0, "prompts": 0, "generated_tokens": 0})

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 32, temperature: float = 0.0,
                 seed: int = 0, top_k: int | None = None, stop: str | None = "\n",
                 progress: bool = False) -> list[str]:
        """One continuation per prompt (new text only), cut before ``stop`` (``None``: no stop string).

        ``temperature=0`` is greedy decoding; above 0 it samples, reproducibly for a given ``seed``.
        """
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this backend's tokenizer (an estimate of 4 characters a token when unknown)."""
        return max(1, (len(text) + 3) // 4) if text else 0

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"<{type(self).__name__} {self.name}>"


class LocalBackend(Backend):
    """A transformers model and tokenizer in this process, generated with ``week7.lm.generate``."""

    def __init__(self, name: str, model: Any, tokenizer: Any, batch_size: int = 64) -> None:
        super().__init__(name=name)
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 32, temperature: float = 0.0,
                 seed: int = 0, top_k: int | None = None, stop: str | None = "\n",
                 progress: bool = False) -> list[str]:
        from week7 import lm

        prompts = _check_prompts(prompts)
        if not prompts:
            return []
        outs = lm.generate(self.model, self.tokenizer, prompts, max_new_tokens=max_new_tokens,
                           temperature=temperature, top_k=top_k, seed=seed, batch_size=self.batch_size,
                           stop=stop, progress=progress)
        outs = [str(o) for o in outs]
        self.stats["calls"] += 1
        self.stats["prompts"] += len(prompts)
        self.stats["generated_tokens"] += sum(self.count_tokens(o) for o in outs)
        return outs

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0


def family_backend(name: str | None = None, batch_size: int = 64) -> LocalBackend:
    """A model of the course family (the largest shipped one when ``name`` is None)."""
    try:
        from week7 import zoo
    except ImportError as e:  # pragma: no cover - the family ships with the package
        raise BackendError(f"the course model family (week7.zoo) is not importable: {e}") from e
    names = [str(n) for n in zoo.list_models()["name"]]
    if not names:
        raise BackendError("the course model family holds no model: run the training script or reinstall week7")
    if name is None:
        name = names[-1]
    if name not in names:
        raise BackendError(f"unknown family model {name!r}; choose one of {names}")
    model, tok = zoo.load(name)
    return LocalBackend(f"family:{name}", model, tok, batch_size=batch_size)


def hub_backend(name: str, device: str | None = None, batch_size: int = 16) -> LocalBackend:
    """Any causal LM that transformers loads, by hub name or local folder, through ``week7.zoo.load`` (the one
    loader: float32, left padding, a family copy's checksums checked, the same errors)."""
    from week7 import zoo

    try:
        model, tok = zoo.load(name, device=device)
    except (OSError, ValueError) as e:  # zoo.HubUnavailableError, ChecksumError, a file given for a folder
        raise BackendError(f"{str(e).splitlines()[0]} Unset W7_BACKEND to use the course family instead.") from e
    return LocalBackend(f"hf:{name}", model, tok, batch_size=batch_size)


class OpenAIBackend(Backend):
    """A client for any server that speaks the OpenAI protocol (``/chat/completions`` or ``/completions``)."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, mode: str | None = None,
                 timeout: float = 60.0, retries: int = 3, system: str | None = None) -> None:
        super().__init__(name=f"openai:{model}")
        base_url = base_url if base_url is not None else os.environ.get(ENV_BASE_URL, "")
        if not base_url:
            raise BackendError(f"set {ENV_BASE_URL} to the endpoint's base URL (for example "
                               "https://api.openai.com/v1 or http://127.0.0.1:8000/v1) to use an openai: backend")
        if not base_url.startswith(("http://", "https://")):
            raise BackendError(f"{ENV_BASE_URL}={base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get(ENV_API_KEY, "")
        mode = mode or os.environ.get(ENV_MODE, "chat")
        if mode not in ("chat", "completions"):
            raise BackendError(f"{ENV_MODE} must be 'chat' or 'completions', got {mode!r}")
        self.model, self.mode, self.timeout, self.retries, self.system = model, mode, timeout, retries, system

    def _post(self, path: str, body: dict) -> dict:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode())
            except urllib.error.HTTPError as e:
                detail = e.read().decode(errors="replace")[:500]
                last = f"HTTP {e.code} from {self.base_url + path}: {detail}"
                if e.code in (429, 500, 502, 503, 504) and attempt < self.retries:
                    time.sleep(min(8.0, 0.5 * 2 ** attempt))
                    continue
                hint = " (check OPENAI_API_KEY)" if e.code in (401, 403) else ""
                raise BackendError(last + hint) from e
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                last = f"cannot reach {self.base_url + path}: {e}"
                if attempt < self.retries:
                    time.sleep(min(8.0, 0.5 * 2 ** attempt))
                    continue
                raise BackendError(last + f" (check {ENV_BASE_URL} and that the server runs)") from e
        raise BackendError(last)  # pragma: no cover

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 32, temperature: float = 0.0,
                 seed: int = 0, top_k: int | None = None, stop: str | None = "\n",
                 progress: bool = False) -> list[str]:
        from tqdm.auto import tqdm

        prompts = _check_prompts(prompts)
        outs: list[str] = []
        for i, p in enumerate(tqdm(prompts, disable=not progress, desc=self.name)):
            body: dict[str, Any] = {"model": self.model, "max_tokens": int(max_new_tokens),
                                    "temperature": float(temperature), "seed": int(seed) + i}
            if stop is not None:
                body["stop"] = [stop]
            if top_k is not None:
                body["top_k"] = int(top_k)  # honoured by local servers (vLLM, llama.cpp, week7.serve)
            if self.mode == "chat":
                msgs = ([{"role": "system", "content": self.system}] if self.system else [])
                body["messages"] = msgs + [{"role": "user", "content": p}]
                reply = self._post("/chat/completions", body)
                try:
                    text = reply["choices"][0]["message"]["content"] or ""
                except (KeyError, IndexError, TypeError) as e:
                    raise BackendError(f"unexpected chat reply from {self.base_url}: {str(reply)[:300]}") from e
            else:
                body["prompt"] = p
                reply = self._post("/completions", body)
                try:
                    text = reply["choices"][0]["text"] or ""
                except (KeyError, IndexError, TypeError) as e:
                    raise BackendError(f"unexpected completion reply from {self.base_url}: {str(reply)[:300]}") from e
            used = (reply.get("usage") or {}).get("completion_tokens")
            self.stats["generated_tokens"] += int(used) if isinstance(used, int) else self.count_tokens(text)
            outs.append(text)
        self.stats["calls"] += 1
        self.stats["prompts"] += len(prompts)
        return outs


def get_backend(spec: str | None = None, **kw: Any) -> Backend:
    """Return the backend that ``spec`` (or the environment variable ``W7_BACKEND``) names; the family by default.

    Examples: ``get_backend()``, ``get_backend("family:<name>")``, ``get_backend("hf:gpt2")``,
    ``get_backend("openai:gpt-4o-mini")``.
    """
    spec = spec if spec is not None else os.environ.get(ENV_BACKEND, "").strip()
    if not spec or spec == "family":
        return family_backend(None, **kw)
    kind, sep, name = spec.partition(":")
    if not sep or not name:
        raise BackendError(f"backend spec {spec!r} must look like 'family:<name>', 'hf:<model>' or 'openai:<model>'")
    if kind == "family":
        return family_backend(name, **kw)
    if kind in ("hf", "hub"):
        return hub_backend(name, **kw)
    if kind == "openai":
        return OpenAIBackend(name, **kw)
    raise BackendError(f"unknown backend kind {kind!r} in {spec!r}: use family, hf or openai")
