"""A small OpenAI-compatible server for a course model: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``.

It lets the endpoint client of ``week7.backends`` be tested offline, and lets a class share one model over the
network. Standard library only (``http.server``); one generation at a time (a lock); every request is bounded
(body size, prompt length, ``max_tokens``, ``n``, socket timeout) and answered with an OpenAI-style error object
when it is malformed.

Run it from a shell::

    python -m week7.serve --model <family name> --port 8000
    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 W7_BACKEND=openai:<family name> jupyter lab

or from Python (tests)::

    server, url = start_server(backend)     # a thread on 127.0.0.1, a free port
    ...
    server.shutdown(); server.server_close()

Chat messages are joined into one prompt (their contents separated by a blank line): the family has no chat
template, so a chat request and a completion request with the same text give the same generation.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY_BYTES = 1 << 20       # 1 MiB per request
DRAIN_LIMIT_BYTES = 8 << 20    # oversized bodies up to this are read and dropped before the 413
MAX_PROMPT_CHARS = 16_000      # per prompt
MAX_TOKENS = 512               # per completion
MAX_N = 16                     # completions per request
SOCKET_TIMEOUT_S = 30.0


class RequestError(ValueError):
    """A request the server refuses; ``status`` is the HTTP code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _number(body: dict, key: str, default: float, lo: float, hi: float, integer: bool = False) -> Any:
    v = body.get(key, default)
    if v is None:
        v = default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not float(v).is_integer()):
        raise RequestError(f"'{key}' must be {'an integer' if integer else 'a number'}, got {v!r}")
    if not lo <= v <= hi:
        raise RequestError(f"'{key}' must be between {lo} and {hi}, got {v}")
    return int(v) if integer else float(v)


def _stops(body: dict) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop) or len(stop) > 4:
        raise RequestError("'stop' must be a non-empty string or a list of at most 4 non-empty strings")
    return stop


def _cut(text: str, stops: list[str]) -> tuple[str, str]:
    cut = min((text.find(s) for s in stops if s in text), default=-1)
    return (text[:cut], "stop") if cut >= 0 else (text, "length")


def chat_prompt(messages: Any) -> str:
    """Join chat messages into one prompt: the contents, in order, separated by a blank line."""
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list of {'role': ..., 'content': ...}")
    parts = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "developer"):
            raise RequestError(f"messages[{i}] needs a 'role' of system, user, assistant or developer")
        content = m.get("content")
        if isinstance(content, list):  # the content-parts form: keep the text parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise RequestError(f"messages[{i}]['content'] must be a string")
        if content:
            parts.append(content)
    return "\n\n".join(parts)


class Engine:
    """Turns validated requests into generations with a backend, one at a time."""

    def __init__(self, backend: Any, model_name: str | None = None, api_key: str | None = None) -> None:
        self.backend = backend
        self.api_key = api_key or None  # when set, requests must carry "Authorization: Bearer <api_key>"
        self.model_name = model_name or backend.name.split(":", 1)[-1]
        self.lock = threading.Lock()
        self.served = 0

    def run(self, prompt: str, body: dict) -> tuple[list[tuple[str, str]], int, int]:
        if not isinstance(prompt, str):
            raise RequestError("the prompt must be a string")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise RequestError(f"prompt of {len(prompt)} characters exceeds the limit of {MAX_PROMPT_CHARS}", 413)
        max_tokens = _number(body, "max_tokens", 16, 1, MAX_TOKENS, integer=True)
        if body.get("max_completion_tokens") is not None:
            max_tokens = _number(body, "max_completion_tokens", 16, 1, MAX_TOKENS, integer=True)
        temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
        n = _number(body, "n", 1, 1, MAX_N, integer=True)
        seed = _number(body, "seed", 0, 0, 2**31 - 1, integer=True)
        top_k = None if body.get("top_k") in (None, 0, -1) else _number(body, "top_k", 0, 1, 1_000_000, integer=True)
        stops = _stops(body)
        with self.lock:
            outs = self.backend.generate([prompt] * n, max_new_tokens=max_tokens, temperature=temperature,
                                         seed=seed, top_k=top_k, stop=None)
            self.served += 1
        choices = [_cut(o, stops) for o in outs]
        return choices, self.backend.count_tokens(prompt), sum(self.backend.count_tokens(c[0]) for c in choices)


def make_handler(engine: Engine) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "week7-serve/1"
        timeout = SOCKET_TIMEOUT_S

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet by default
            pass

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            kind = "invalid_request_error" if status < 500 else "server_error"
            self._send(status, {"error": {"message": message, "type": kind, "code": status}})

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send(200, {"object": "list", "data": [
                    {"id": engine.model_name, "object": "model", "owned_by": "week7"}]})
            elif self.path.rstrip("/") in ("/health", ""):
                self._send(200, {"status": "ok", "served": engine.served})
            else:
                self._error(404, f"no route GET {self.path}")

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.rstrip("/")
            if path not in ("/v1/chat/completions", "/v1/completions"):
                self._error(404, f"no route POST {self.path}; use /v1/chat/completions or /v1/completions")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length <= 0:
                self._error(411, "a JSON body with a Content-Length header is required")
                return
            if length > MAX_BODY_BYTES:
                # Read and discard a moderately oversized body before answering: a client still
                # writing it would otherwise meet a closed socket (EPIPE) instead of the 413.
                # A body past DRAIN_LIMIT_BYTES is not read at all; the connection is closed.
                if length <= DRAIN_LIMIT_BYTES:
                    left = length
                    while left > 0:
                        chunk = self.rfile.read(min(left, 1 << 16))
                        if not chunk:
                            break
                        left -= len(chunk)
                self.close_connection = True
                self._error(413, f"body of {length} bytes exceeds the limit of {MAX_BODY_BYTES}")
                return
            raw = self.rfile.read(length)
            if engine.api_key and self.headers.get("Authorization", "") != f"Bearer {engine.api_key}":
                self._error(401, "missing or wrong API key: send 'Authorization: Bearer <key>'")
                return
            try:
                body = json.loads(raw)
                if not isinstance(body, dict):
                    raise RequestError("the body must be a JSON object")
                if body.get("stream"):
                    raise RequestError("streaming is not supported by this server; send stream=false")
                if path.endswith("/chat/completions"):
                    prompt = chat_prompt(body.get("messages"))
                else:
                    prompt = body.get("prompt")
                    if isinstance(prompt, list) and len(prompt) == 1:
                        prompt = prompt[0]
                    if not isinstance(prompt, str):
                        raise RequestError("'prompt' must be a string")
                choices, n_in, n_out = engine.run(prompt, body)
            except json.JSONDecodeError as e:
                self._error(400, f"the body is not valid JSON: {e}")
                return
            except RequestError as e:
                self._error(e.status, str(e))
                return
            except Exception as e:  # a bug or a model failure: say so, keep serving
                self._error(500, f"{type(e).__name__}: {e}")
                return
            created = int(time.time())
            usage = {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}
            if path.endswith("/chat/completions"):
                payload = {"id": f"chatcmpl-{uuid.uuid4().hex[:16]}", "object": "chat.completion",
                           "created": created, "model": engine.model_name, "usage": usage,
                           "choices": [{"index": i, "finish_reason": fr,
                                        "message": {"role": "assistant", "content": text}}
                                       for i, (text, fr) in enumerate(choices)]}
            else:
                payload = {"id": f"cmpl-{uuid.uuid4().hex[:16]}", "object": "text_completion",
                           "created": created, "model": engine.model_name, "usage": usage,
                           "choices": [{"index": i, "finish_reason": fr, "text": text, "logprobs": None}
                                       for i, (text, fr) in enumerate(choices)]}
            self._send(200, payload)

    return Handler


def start_server(backend: Any, host: str = "127.0.0.1", port: int = 0, model_name: str | None = None,
                 api_key: str | None = None) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``backend`` from a daemon thread; returns the server and its base URL (ending in ``/v1``).

    Stop it with ``server.shutdown(); server.server_close()``.
    """
    server = ThreadingHTTPServer((host, port), make_handler(Engine(backend, model_name, api_key)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="week7-serve", daemon=True)
    thread.start()
    return server, f"http://{host}:{server.server_address[1]}/v1"


def main(argv: list[str] | None = None) -> None:
    from week7.backends import get_backend

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a family model name (default: the largest), or a backend spec")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--api-key", default=None, help="require this bearer key (default: none)")
    args = ap.parse_args(argv)
    spec = args.model if args.model and ":" in args.model else (f"family:{args.model}" if args.model else "family")
    backend = get_backend(spec)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(Engine(backend, api_key=args.api_key)))
    print(f"serving {backend.name} at http://{args.host}:{server.server_address[1]}/v1 (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
