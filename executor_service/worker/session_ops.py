"""Session operations that need the engine, run by a worker because only workers talk to Docker."""

from __future__ import annotations

import base64
from typing import Any

import structlog

from executor_service.errors import InvalidRequest, SessionEnded
from executor_service.jobs.ids import utcnow
from executor_service.jobs.session import Session, SessionState
from executor_service.jobs.workspace_path import safe_workspace_path
from executor_service.sandbox.runner import Sandbox
from executor_service.sandbox.spec import SandboxConfig
from executor_service.worker.context import WorkerContext
from executor_service.worker.execution import SESSION_LABEL

log = structlog.get_logger(__name__)


class SessionOperations:
    def __init__(self, context: WorkerContext) -> None:
        self._ctx = context

    def perform(self, operation: str, session_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """Dispatch by name; the reply is JSON-ready. Errors are ServiceErrors for the caller."""
        if operation == "create":
            return self.create(session_id)
        if operation == "delete":
            self.delete(session_id)
            return {}
        sandbox = self._sandbox(session_id)
        if operation == "put":
            path = safe_workspace_path(str(params["path"]), field="path")
            self._ctx.runner.put_files(sandbox, {path: base64.b64decode(params["content"])})
            return {}
        if operation == "list":
            files = self._ctx.runner.list_files(sandbox)
            return {"files": [{"path": f.path, "size_bytes": f.size_bytes} for f in files]}
        if operation == "read":
            path = safe_workspace_path(str(params["path"]), field="path")
            data = self._ctx.runner.read_file(sandbox, path, max_bytes=int(params["max_bytes"]))
            return {"content": base64.b64encode(data).decode()}
        raise InvalidRequest(f"unknown session operation {operation!r}")

    def create(self, session_id: str) -> dict[str, Any]:
        ctx = self._ctx
        session = ctx.store.get_session(session_id)
        config = self._config(session)
        sandbox = ctx.runner.prepare(config, single_use=False, lifetime_s=session.max_lifetime_s)
        try:
            ctx.store.update_session(
                session_id, lambda current: current.model_copy(update={"container_id": sandbox.id})
            )
        except BaseException:
            ctx.runner.destroy(sandbox.id)
            raise
        log.info("session started", session_id=session_id)
        return {}

    def delete(self, session_id: str) -> None:
        self.end(session_id, SessionState.DELETED)

    def end(self, session_id: str, state: SessionState) -> None:
        """Mark the session ended first, so no new run starts, then remove its container."""
        ctx = self._ctx
        ctx.store.update_session(
            session_id, lambda current: current.model_copy(update={"state": state})
        )
        ctx.runner.destroy_labelled({SESSION_LABEL: session_id})
        log.info("session ended", session_id=session_id, state=state.value)

    def _sandbox(self, session_id: str) -> Sandbox:
        ctx = self._ctx
        session = ctx.store.get_session(session_id)
        if session.state != SessionState.ACTIVE or session.container_id is None:
            raise SessionEnded(f"session {session_id} is {session.state.value}; open a new one")
        ctx.store.update_session(
            session_id, lambda current: current.model_copy(update={"last_used_at": utcnow()})
        )
        return Sandbox(id=session.container_id, config=self._config(session), single_use=False)

    def _config(self, session: Session) -> SandboxConfig:
        planner = self._ctx.planner
        policy = planner.policies[session.policy]
        return planner.sandbox_config(
            policy, session.language, policy.limits, {SESSION_LABEL: session.id}
        )
