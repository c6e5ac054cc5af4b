"""A small in-memory stand-in for the execution service's HTTP API, served by httpx.MockTransport.

It speaks the wire contract (shapes, statuses, error JSON) and never runs code: each submitted
program's outcome comes from ``outcomes`` (code text -> RunResult fields), default success.

Sessions behave as the real service's do: an ended session (``expire``, or DELETE) keeps its
record with state expired or deleted, and any use of it is refused with 409 session_ended; only
an id the service never issued (or whose record is gone) is 404 not_found.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

KEY = "test-key"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def error(
    status: int, code: str, message: str, field_: str | None = None, **headers: str
) -> httpx.Response:
    body = {"error": {"code": code, "message": message, "field": field_}}
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class FakeService:
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Executions stay "running" for this many polls before finishing (0: finish on submit).
    polls_before_final: int = 0
    never_finish: bool = False
    executions: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    busy_responses: int = 0
    # The next N session submits are admitted, then the session ends before a worker runs them
    # (the janitor won the race): the execution fails with error code session_ended.
    sessions_end_before_run: int = 0
    on_request: Callable[[httpx.Request], httpx.Response | None] | None = None
    _polls: dict[str, int] = field(default_factory=dict)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def expire(self, session_id: str) -> None:
        """End a session as the service's janitor does when it was idle too long."""
        self.sessions[session_id]["state"] = "expired"

    def active_sessions(self) -> list[str]:
        return [ident for ident, session in self.sessions.items() if session["state"] == "active"]

    def handle(self, request: httpx.Request) -> httpx.Response:
        body: Any = None
        if request.content and request.headers.get("content-type") == "application/json":
            body = json.loads(request.content)
        self.requests.append((request.method, request.url.path, body))
        if self.on_request is not None:
            override = self.on_request(request)
            if override is not None:
                return override
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return error(401, "unauthorized", "missing or unknown key")
        parts = request.url.path.strip("/").split("/")
        if parts[:2] == ["v1", "executions"]:
            return self._executions(request, parts[2:], body)
        if parts[:2] == ["v1", "sessions"]:
            return self._sessions(request, parts[2:])
        return error(404, "not_found", "no such route")

    def _executions(self, request: httpx.Request, rest: list[str], body: Any) -> httpx.Response:
        if request.method == "POST" and not rest:
            return self._submit(body)
        if request.method == "POST" and rest == ["batch"]:
            made = [self._create(item) for item in body["executions"]]
            return httpx.Response(202, json={"executions": made})
        if request.method == "GET" and not rest:
            limit = int(request.url.params.get("limit", "50"))
            items = list(reversed(self.executions.values()))[:limit]
            return httpx.Response(200, json={"executions": items})
        execution = self.executions.get(rest[0])
        if execution is None:
            return error(404, "not_found", f"no execution {rest[0]}")
        if request.method == "GET" and len(rest) == 1:
            self._advance(execution)
            return httpx.Response(200, json=execution)
        if request.method == "POST" and rest[1:] == ["cancel"]:
            self.cancelled.append(execution["id"])
            if execution["state"] in ("queued", "running"):
                execution["state"] = "cancelled"
                execution["finished_at"] = _now()
            return httpx.Response(200, json=execution)
        if request.method == "GET" and rest[1:] == ["events"]:
            self._finish(execution)
            text = (
                'event: state\ndata: {"state": "running"}\n\n'
                'event: output\ndata: {"stream": "stdout", "data": "hi\\n"}\n\n'
                "event: ping\ndata: {}\n\n"
                f"event: result\ndata: {json.dumps(execution)}\n\n"
            )
            return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})
        return error(404, "not_found", "no such route")

    def _submit(self, body: dict[str, Any]) -> httpx.Response:
        if "language" in body and not isinstance(body["language"], str):
            return error(422, "validation_error", "not a string", "language")
        if self.busy_responses > 0:
            self.busy_responses -= 1
            return error(409, "session_busy", "session runs another execution")
        session_id = body.get("session_id")
        if session_id is not None:
            refused = self._refuse_ended(session_id, field_="session_id")
            if refused is not None:
                return refused
            if self.sessions_end_before_run > 0:
                self.sessions_end_before_run -= 1
                return self._ended_before_run(body, session_id)
        execution = self._create(body)
        if body.get("wait") and self.polls_before_final == 0 and not self.never_finish:
            self._finish(execution)
            return httpx.Response(200, json=execution)
        return httpx.Response(202, json=execution)

    def _refuse_ended(self, session_id: str, field_: str | None = None) -> httpx.Response | None:
        session = self.sessions.get(session_id)
        if session is None:
            return error(404, "not_found", f"no session {session_id!r}")
        if session["state"] != "active":
            message = f"session {session_id} is {session['state']}; open a new one"
            return error(409, "session_ended", message, field_)
        return None

    def _ended_before_run(self, body: dict[str, Any], session_id: str) -> httpx.Response:
        self.expire(session_id)
        execution = self._create(body)
        execution["state"] = "failed"
        execution["finished_at"] = _now()
        execution["error"] = {
            "code": "session_ended",
            "message": f"session {session_id} is expired; open a new one",
        }
        return httpx.Response(200 if body.get("wait") else 202, json=execution)

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        execution = {
            "id": f"ex_{uuid.uuid4().hex[:12]}",
            "state": "queued",
            "language": body.get("language", "python"),
            "policy": body.get("policy") or "default",
            "session_id": body.get("session_id"),
            "created_at": _now(),
            "started_at": None,
            "finished_at": None,
            "result": None,
            "error": None,
            "_code": body.get("code") or "",
        }
        self.executions[execution["id"]] = execution
        return execution

    def _advance(self, execution: dict[str, Any]) -> None:
        if execution["state"] not in ("queued", "running") or self.never_finish:
            if execution["state"] == "queued":
                execution["state"] = "running"
            return
        seen = self._polls.get(execution["id"], 0) + 1
        self._polls[execution["id"]] = seen
        execution["state"] = "running"
        if seen > self.polls_before_final:
            self._finish(execution)

    def _finish(self, execution: dict[str, Any]) -> None:
        if execution["state"] in ("finished", "cancelled", "failed"):
            return
        outcome = {"status": "ok", "exit_code": 0, "stdout": "", "stderr": ""}
        for needle, result in self.outcomes.items():
            if needle in execution["_code"]:
                outcome = {**outcome, **result}
        execution["state"] = "finished"
        execution["started_at"] = execution["finished_at"] = _now()
        execution["result"] = {
            "stdout_truncated": False,
            "stderr_truncated": False,
            "wall_time_s": 0.05,
            "cpu_time_s": 0.01,
            "memory_peak_bytes": 1000,
            "files": [],
            "message": "",
            **outcome,
        }

    def _sessions(self, request: httpx.Request, rest: list[str]) -> httpx.Response:
        if request.method == "POST" and not rest:
            body = json.loads(request.content)
            created = {
                "id": f"se_{uuid.uuid4().hex[:12]}",
                "policy": body.get("policy") or "default",
                "language": body.get("language", "python"),
                "state": "active",
                "created_at": _now(),
                "last_used_at": _now(),
                "expires_at": _now(),
                "idle_timeout_s": body.get("idle_timeout_s", 600),
                "max_lifetime_s": body.get("max_lifetime_s", 3600),
            }
            self.sessions[created["id"]] = created
            return httpx.Response(201, json=created)
        if request.method == "GET" and not rest:
            return httpx.Response(200, json={"sessions": list(self.sessions.values())})
        session = self.sessions.get(rest[0])
        if session is None:
            return error(404, "not_found", f"no session {rest[0]}")
        if request.method == "DELETE" and len(rest) == 1:
            if session["state"] == "active":  # deleting an ended session is a no-op
                session["state"] = "deleted"
            return httpx.Response(204)
        if request.method == "GET" and len(rest) == 1:
            return httpx.Response(200, json=session)
        if rest[1:2] == ["files"]:
            refused = self._refuse_ended(rest[0])
            if refused is not None:
                return refused
            path = "/".join(rest[2:])
            if request.method == "PUT":
                self.files[(rest[0], path)] = request.content
                return httpx.Response(201, json={"path": path, "size_bytes": len(request.content)})
            if request.method == "GET" and not path:
                listed = [
                    {"path": p, "size_bytes": len(d)}
                    for (s, p), d in self.files.items()
                    if s == rest[0]
                ]
                return httpx.Response(200, json={"files": listed})
            if request.method == "GET":
                data = self.files.get((rest[0], path))
                if data is None:
                    return error(404, "not_found", f"no file {path}")
                return httpx.Response(200, content=data)
        return error(404, "not_found", "no such route")
