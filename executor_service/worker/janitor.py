"""Drive every accepted execution to a final state, and clean up after others.

Every worker runs one; the sweeps are idempotent (state changes are checked transitions, a claim
is exactly-once), so several janitors at once do no harm:
- a running execution whose worker's heartbeat went silent is failed ("worker lost");
- a running execution past its lease is failed whatever the heartbeats say (its worker may be
  alive but unable to write its result);
- a queued execution that no message in the broker stands for is sent again, and one queued
  longer than max_queue_age_s is failed;
- sessions past their time end; sandboxes past their deadline are removed, as are the warm-pool
  sandboxes of a worker that is gone and egress directories that nothing can use any more.
"""

from __future__ import annotations

import time
from datetime import timedelta

import structlog

from executor_service.errors import NotFound
from executor_service.jobs.dispatch import broker_task_ids
from executor_service.jobs.execution import ExecutionError, ExecutionState
from executor_service.jobs.ids import utcnow
from executor_service.jobs.session import SessionState
from executor_service.sandbox.spec import MAX_WALL_TIME_S
from executor_service.worker.context import WorkerContext
from executor_service.worker.session_ops import SessionOperations

log = structlog.get_logger(__name__)

WORKER_LOST = ExecutionError(
    code="worker_lost", message="worker lost: the worker running it stopped responding"
)
LEASE_EXPIRED = ExecutionError(
    code="lease_expired",
    message="the run outlived its lease (wall time + margin) without a result being recorded",
)
EXPIRED_IN_QUEUE = ExecutionError(
    code="expired_in_queue", message="no worker took it within the service's queue age bound"
)
RUNNING = frozenset({ExecutionState.RUNNING})
QUEUED = frozenset({ExecutionState.QUEUED})


class Janitor:
    def __init__(self, context: WorkerContext) -> None:
        self._ctx = context
        self._sessions = SessionOperations(context)
        self._missing_since: dict[str, float] = {}  # pool owners whose heartbeat was missing

    def sweep(self) -> None:
        """The engine-bound chores; the Redis-only ones run in `reconcile`."""
        self.expire_sessions()
        self._ctx.runner.reap()
        self._ctx.runner.reap_orphans(self._worker_alive)
        self.sweep_egress_dirs()
        self.report_images()

    def _worker_alive(self, name: str) -> bool:
        """Whether a pool's worker may still be alive: one whose heartbeat is missing counts as
        gone only once it has stayed missing for a heartbeat's lifetime (after a Redis restart,
        say, a live worker's beat is back within a third of that)."""
        if name == self._ctx.name or self._ctx.stores.workers.alive(name):
            self._missing_since.pop(name, None)
            return True
        first = self._missing_since.setdefault(name, time.monotonic())
        return time.monotonic() - first < self._ctx.settings.heartbeat_ttl_s

    def sweep_egress_dirs(self) -> int:
        """Remove the egress directory of an execution that ended (its worker died before it
        could) and of a session that ended; return how many went.

        A directory is named for its execution (ex_...) or session (se_...). A session's stays
        while the session is active: its sandbox's mount points at that very directory. One whose
        record is unknown goes only once it is older than any run can last: its record expired,
        or it belongs to another deployment sharing egress_dir by mistake, whose runs it must
        not cut.
        """
        ctx = self._ctx
        root = ctx.settings.egress_dir
        if not root.is_dir():
            return 0
        removed = 0
        unknown_after = time.time() - MAX_WALL_TIME_S - ctx.settings.lease_margin_s
        for entry in root.iterdir():
            try:
                if entry.name.startswith("ex_"):
                    ended = ctx.stores.executions.get(entry.name).state.final
                elif entry.name.startswith("se_"):
                    ended = ctx.stores.sessions.get(entry.name).state != SessionState.ACTIVE
                else:
                    continue
            except NotFound:
                try:
                    ended = entry.stat().st_mtime < unknown_after
                except FileNotFoundError:
                    continue
            if ended:
                ctx.egress.remove_dir(entry)
                removed += 1
        return removed

    def reconcile(self) -> None:
        """Redis-only, so a slow engine never delays what callers see."""
        lost = self.fail_lost_executions() + self.expire_leases()
        self.requeue_lost()
        for execution_id in lost:
            # By name: a pool member cannot carry the execution's label, only its name.
            self._ctx.runner.destroy(execution_id)
            log.info("ended execution cleaned", execution_id=execution_id)

    def fail_lost_executions(self) -> list[str]:
        """Fail every running execution of a worker whose heartbeat went silent."""
        ctx = self._ctx
        grace = timedelta(seconds=ctx.settings.heartbeat_ttl_s)
        lost: list[str] = []
        for execution_id in ctx.stores.executions.running_ids():
            try:
                execution = ctx.stores.executions.get(execution_id)
            except NotFound:
                continue
            if execution.state != ExecutionState.RUNNING or execution.worker is None:
                continue
            claimed = execution.claimed_at or execution.created_at
            if utcnow() - claimed < grace or ctx.stores.workers.alive(execution.worker):
                continue
            if self._fail(execution_id, WORKER_LOST, RUNNING):
                lost.append(execution_id)
                log.warning(
                    "execution failed: worker lost",
                    execution_id=execution_id,
                    lost_worker=execution.worker,
                )
        return lost

    def expire_leases(self) -> list[str]:
        ended = []
        for execution_id in self._ctx.stores.executions.expired_leases(time.time()):
            if self._fail(execution_id, LEASE_EXPIRED, RUNNING):
                ended.append(execution_id)
                log.warning("execution failed: lease expired", execution_id=execution_id)
        return ended

    def requeue_lost(self) -> int:
        """Send again each old queued execution no broker message stands for; fail stale ones."""
        ctx = self._ctx
        now = time.time()
        executions = ctx.stores.executions
        for execution_id in executions.queued_before(now - ctx.settings.max_queue_age_s):
            if self._fail(execution_id, EXPIRED_IN_QUEUE, QUEUED):
                log.warning("execution failed: expired in queue", execution_id=execution_id)
        old = executions.queued_before(now - ctx.settings.requeue_after_s)
        if not old:
            return 0
        in_flight = broker_task_ids(ctx.broker)
        sent = 0
        for execution_id in old:
            if execution_id in in_flight:
                continue
            ctx.dispatcher.submit(execution_id)
            ctx.metrics.count_outcome("requeued")
            sent += 1
            log.warning("queued execution had no message; sent again", execution_id=execution_id)
        return sent

    def _fail(
        self, execution_id: str, error: ExecutionError, only_from: frozenset[ExecutionState]
    ) -> bool:
        try:
            _, changed = self._ctx.stores.executions.fail(execution_id, error, only_from=only_from)
        except NotFound:
            return False
        if changed:
            self._ctx.metrics.count_outcome("failed")
        return changed

    def expire_sessions(self) -> int:
        ctx = self._ctx
        expired = 0
        for session_id in ctx.stores.sessions.active_ids():
            try:
                session = ctx.stores.sessions.get(session_id)
            except NotFound:
                continue
            if session.state != SessionState.ACTIVE or utcnow() < session.expires_at:
                continue
            lifetime_over = utcnow() >= session.created_at + timedelta(
                seconds=session.max_lifetime_s
            )
            # A run in progress is not idleness; only the session's lifetime cuts it short.
            if not lifetime_over and ctx.stores.executions.session_busy(session_id):
                continue
            if self._sessions.expire_if_idle(session_id):
                expired += 1
        return expired

    def report_images(self) -> None:
        """Tell the API which catalogue images exist; it may not ask the engine itself."""
        catalogue = self._ctx.planner.catalogue
        refs = {
            name: catalogue.image_ref(self._ctx.settings.image_prefix, name)
            for name in catalogue.images
        }
        present = self._ctx.runner.present_images(refs.values())
        self._ctx.stores.workers.set_images_present(
            {name: ref in present for name, ref in refs.items()}
        )
