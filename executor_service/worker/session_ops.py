"""Session operations that need the engine, run by a worker because only workers talk to Docker."""

from __future__ import annotations

import structlog

from executor_service.errors import SessionEnded
from executor_service.jobs.ids import utcnow
from executor_service.jobs.session import Session, SessionState
from executor_service.jobs.session_commands import (
    Content,
    Done,
    EndSession,
    FileEntry,
    ListFiles,
    Listing,
    SessionCommand,
    SessionReply,
    StartSandbox,
    WriteFile,
)
from executor_service.jobs.workspace_path import safe_workspace_path
from executor_service.sandbox.runner import Sandbox
from executor_service.sandbox.spec import SandboxConfig
from executor_service.worker.context import WorkerContext

log = structlog.get_logger(__name__)

SESSION_LABEL = "agent-sandbox.session"


class SessionOperations:
    def __init__(self, context: WorkerContext) -> None:
        self._ctx = context

    def perform(
        self, command: SessionCommand, blob: bytes | None
    ) -> tuple[SessionReply, bytes | None]:
        """Do what the command says; a ServiceError raised here is the caller's answer."""
        operation, session_id = command.operation, command.session_id
        if isinstance(operation, StartSandbox):
            self.start(session_id)
            return Done(), None
        if isinstance(operation, EndSession):
            self.end(session_id, SessionState.DELETED)
            return Done(), None
        sandbox = self._sandbox(session_id)
        runner = self._ctx.runner
        if isinstance(operation, WriteFile):
            path = safe_workspace_path(operation.path, field="path")
            runner.put_files(sandbox, {path: blob or b""})
            return Done(), None
        if isinstance(operation, ListFiles):
            listing = runner.list_files(sandbox, max_entries=operation.max_entries)
            files = tuple(FileEntry(path=f.path, size_bytes=f.size_bytes) for f in listing.files)
            return Listing(files=files, truncated=listing.truncated), None
        path = safe_workspace_path(operation.path, field="path")
        return Content(), runner.read_file(sandbox, path, max_bytes=operation.max_bytes)

    def start(self, session_id: str) -> None:
        ctx = self._ctx
        session = ctx.stores.sessions.get(session_id)
        if session.state != SessionState.ACTIVE:
            raise SessionEnded(f"session {session_id} is {session.state.value}")
        config = self._config(session)
        if config.egress_dir is not None:
            ctx.egress.make_dir(config.egress_dir)
        sandbox = ctx.runner.prepare(config, single_use=False, lifetime_s=session.max_lifetime_s)
        try:
            # The idle clock starts once the sandbox runs, not when the caller asked for it.
            started = utcnow()
            ctx.stores.sessions.update(
                session_id,
                lambda current: current.model_copy(
                    update={"container_id": sandbox.id, "last_used_at": started}
                ),
            )
        except BaseException:
            ctx.runner.destroy(sandbox.id)
            raise
        log.info("session started", session_id=session_id)

    def end(self, session_id: str, state: SessionState) -> None:
        """Mark the session ended first, so no new run starts, then remove its container."""
        ctx = self._ctx
        ctx.stores.sessions.update(
            session_id, lambda current: current.model_copy(update={"state": state})
        )
        ctx.runner.destroy_labelled({SESSION_LABEL: session_id})
        ctx.egress.remove_dir(ctx.settings.egress_dir / session_id)
        log.info("session ended", session_id=session_id, state=state.value)

    def expire_if_idle(self, session_id: str) -> bool:
        """End the session if, checked in the same write, it is still active and past its
        deadline; a run that touched it meanwhile keeps it. True if it was ended."""
        now = utcnow()

        def expire(current: Session) -> Session:
            if current.state != SessionState.ACTIVE or now < current.expires_at:
                return current
            return current.model_copy(update={"state": SessionState.EXPIRED})

        ended = self._ctx.stores.sessions.update(session_id, expire)
        if ended.state != SessionState.EXPIRED:
            return False
        self._ctx.runner.destroy_labelled({SESSION_LABEL: session_id})
        self._ctx.egress.remove_dir(self._ctx.settings.egress_dir / session_id)
        log.info("session ended", session_id=session_id, state=ended.state.value)
        return True

    def _sandbox(self, session_id: str) -> Sandbox:
        ctx = self._ctx
        session = ctx.stores.sessions.get(session_id)
        if session.state != SessionState.ACTIVE or session.container_id is None:
            raise SessionEnded(f"session {session_id} is {session.state.value}; open a new one")
        ctx.stores.sessions.update(
            session_id, lambda current: current.model_copy(update={"last_used_at": utcnow()})
        )
        return Sandbox(id=session.container_id, config=self._config(session), single_use=False)

    def _config(self, session: Session) -> SandboxConfig:
        planner = self._ctx.planner
        policy = planner.policies[session.policy]
        return planner.sandbox_config(
            policy,
            session.language,
            policy.limits,
            {SESSION_LABEL: session.id},
            egress_name=session.id if policy.network.mode == "allowlist" else None,
        )
