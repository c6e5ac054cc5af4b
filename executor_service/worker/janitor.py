"""Clean up after others: executions whose worker died, sessions past their time, stale sandboxes.

Every worker runs one; the sweeps are idempotent (state changes are checked transitions), so
several janitors at once do no harm.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from executor_service.errors import NotFound
from executor_service.jobs.execution import ExecutionError, ExecutionState
from executor_service.jobs.ids import utcnow
from executor_service.jobs.session import SessionState
from executor_service.sandbox.images import images_present
from executor_service.worker.context import WorkerContext
from executor_service.worker.execution import EXECUTION_LABEL
from executor_service.worker.session_ops import SessionOperations

log = structlog.get_logger(__name__)

WORKER_LOST = ExecutionError(
    code="worker_lost", message="worker lost: the worker running it stopped responding"
)


class Janitor:
    def __init__(self, context: WorkerContext) -> None:
        self._ctx = context
        self._sessions = SessionOperations(context)

    def sweep(self) -> None:
        """The engine-bound chores; lost executions have their own, Redis-only thread."""
        self.expire_sessions()
        self._ctx.runner.reap()
        self.report_images()

    def fail_lost_executions(self) -> int:
        """Mark every execution of a silent worker failed, then remove their containers.

        Marking needs only Redis, so a slow engine never delays what callers see.
        """
        ctx = self._ctx
        grace = timedelta(seconds=ctx.settings.heartbeat_ttl_s)
        lost: list[str] = []
        for execution_id in ctx.store.running_ids():
            try:
                execution = ctx.store.get_execution(execution_id)
            except NotFound:
                continue
            if execution.state != ExecutionState.RUNNING or execution.worker is None:
                continue
            claimed = execution.claimed_at or execution.created_at
            if utcnow() - claimed < grace or ctx.store.worker_alive(execution.worker):
                continue
            _, changed = ctx.store.fail(
                execution_id, WORKER_LOST, only_from=frozenset({ExecutionState.RUNNING})
            )
            if changed:
                lost.append(execution_id)
                ctx.metrics.count_outcome("failed")
                log.warning(
                    "execution failed: worker lost",
                    execution_id=execution_id,
                    lost_worker=execution.worker,
                )
        for execution_id in lost:
            removed = ctx.runner.destroy_labelled({EXECUTION_LABEL: execution_id})
            log.info("lost execution cleaned", execution_id=execution_id, removed=removed)
        return len(lost)

    def expire_sessions(self) -> int:
        ctx = self._ctx
        expired = 0
        for session_id in ctx.store.active_session_ids():
            try:
                session = ctx.store.get_session(session_id)
            except NotFound:
                continue
            if session.state == SessionState.ACTIVE and utcnow() >= session.expires_at:
                self._sessions.end(session_id, SessionState.EXPIRED)
                expired += 1
        return expired

    def report_images(self) -> None:
        """Tell the API which images exist; it may not ask the engine itself."""
        self._ctx.store.set_images_present(images_present(self._ctx.settings))
