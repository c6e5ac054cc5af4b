"""An OpenAI-compatible chat-completions server on 127.0.0.1 with scripted replies, for tests.

Replies are queued per model name, so one server can play several roles (``planner``,
``coder``, ...). A reply is text, a tool call (``call("name", {...})``), an HTTP error
(``fail(500)``), or a function of the request body. Every request body is recorded.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Fail:
    status: int
    message: str = "scripted failure"


Reply = str | dict[str, Any] | Fail | Callable[[dict[str, Any]], "str | dict[str, Any]"]


def call(
    name: str, arguments: Mapping[str, Any] | None = None, content: str = ""
) -> dict[str, Any]:
    """A reply whose message carries one tool call in ``tool_calls``."""
    return {"content": content, "tool_calls": [{"name": name, "arguments": dict(arguments or {})}]}


def fail(status: int, message: str = "scripted failure") -> Fail:
    return Fail(status, message)


class ScriptedOpenAI:
    """The script and the record; ``url`` is the ``/v1`` base for ``openai.AsyncOpenAI``."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.url = ""

    def script(self, model: str, replies: Sequence[Reply]) -> None:
        with self._lock:
            self._queues[model].extend(replies)

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("model") == model]

    def remaining(self, model: str) -> int:
        return len(self._queues[model])

    def _next(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(body)
            queue = self._queues[str(body.get("model"))]
            if not queue:
                return 400, _error(f"no scripted reply left for model {body.get('model')!r}")
            reply = queue.popleft()
        if isinstance(reply, Fail):
            return reply.status, _error(reply.message)
        if callable(reply):
            reply = reply(body)
        return 200, _completion(body, reply)


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "scripted", "code": None}}


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def _completion(body: dict[str, Any], reply: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(reply, str):
        reply = {"content": reply}
    message: dict[str, Any] = {"role": "assistant", "content": reply.get("content", "")}
    finish = "stop"
    if reply.get("tool_calls"):
        finish = "tool_calls"
        message["tool_calls"] = [
            {
                "id": f"call_{uuid.uuid4().hex[:10]}",
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
            }
            for c in reply["tool_calls"]
        ]
    prompt = " ".join(str(m.get("content") or "") for m in body.get("messages", []))
    completion_tokens = _tokens(json.dumps(message))
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:10]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": _tokens(prompt),
            "completion_tokens": completion_tokens,
            "total_tokens": _tokens(prompt) + completion_tokens,
        },
    }


def _handler(state: ScriptedOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, _error(f"no route {self.path}"))
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                self._send(400, _error("body is not JSON"))
                return
            self._send(*state._next(body))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def scripted_openai() -> Iterator[ScriptedOpenAI]:
    """Serve a ScriptedOpenAI on a free loopback port for the block's duration."""
    state = ScriptedOpenAI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, name="scripted-openai", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
