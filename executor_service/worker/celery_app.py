"""The thin Celery layer: tasks hand ids to the worker logic; hooks start the worker's threads
(heartbeat, janitor, reconciler, the session operations' own threads) and stop them, with the
cancel watcher the runs start on demand."""

from __future__ import annotations

import contextlib
from typing import Any

import structlog
from celery import Celery
from celery.signals import worker_ready, worker_shutdown
from redis import RedisError

from executor_service.errors import ServiceError
from executor_service.jobs.dispatch import EXECUTE_TASK, celery_config
from executor_service.sandbox.spec import SandboxConfig
from executor_service.settings import Settings
from executor_service.worker.broker_transport import TRANSPORT
from executor_service.worker.context import WorkerContext
from executor_service.worker.execution import ExecutionWorker
from executor_service.worker.janitor import Janitor
from executor_service.worker.periodic import PeriodicThread
from executor_service.worker.session_op_server import SessionOpServer

log = structlog.get_logger(__name__)
METRICS_FLUSH_S = 1.0  # how stale /metrics may be: the runs' numbers are written this often


class _Process:
    """The worker process's context, built when the worker starts rather than at import."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._context: WorkerContext | None = None
        self._threads: list[PeriodicThread] = []
        self._session_ops: SessionOpServer | None = None

    @property
    def context(self) -> WorkerContext:
        if self._context is None:
            self._context = WorkerContext.create(self.settings)
        return self._context

    def start(self) -> None:
        ctx = self.context
        ctx.stores.workers.heartbeat(ctx.name)
        janitor = Janitor(ctx)
        self._session_ops = SessionOpServer(ctx)
        self._session_ops.start()
        self._threads = [
            PeriodicThread(
                "heartbeat",
                ctx.settings.heartbeat_ttl_s / 3,
                lambda: ctx.stores.workers.heartbeat(ctx.name),
            ),
            PeriodicThread("pool-metrics", ctx.settings.heartbeat_ttl_s / 3, self._report_pool),
            PeriodicThread("metrics", METRICS_FLUSH_S, ctx.metrics.flush),
            PeriodicThread("reconcile", ctx.settings.janitor_interval_s, janitor.reconcile),
            PeriodicThread("janitor", ctx.settings.janitor_interval_s, janitor.sweep),
        ]
        for thread in self._threads:
            thread.start()
        ctx.runner.warm(self._default_configs(ctx))
        try:
            removed = ctx.runner.reap()
        except ServiceError as exc:
            # Not fatal: the janitor reaps again on its next sweep.
            log.warning("start-up reap failed", error=exc.message)
            removed = 0
        log.info("worker ready", worker=ctx.name, reaped=removed)

    def _report_pool(self) -> None:
        ctx = self.context
        state = ctx.runner.pool_state()
        if state is not None:
            ctx.metrics.set_pool(ctx.name, state, ttl_s=ctx.settings.heartbeat_ttl_s)

    @staticmethod
    def _default_configs(ctx: WorkerContext) -> list[SandboxConfig]:
        """The sandboxes of the default policy, one per image: what most requests ask for."""
        planner = ctx.planner
        policy = planner.policies.get(ctx.settings.default_policy)
        if policy is None:
            return []
        configs: dict[str, SandboxConfig] = {}
        for language, image in sorted(policy.languages.items()):
            configs.setdefault(image, planner.sandbox_config(policy, language, policy.limits, {}))
        return list(configs.values())

    def stop(self) -> None:
        """Stop beating first, so /readyz stops counting this worker before it is gone."""
        for thread in self._threads:
            thread.stop()
        if self._session_ops is not None:
            self._session_ops.stop()
        if self._context is not None:
            self._context.metrics.flush()  # best effort, as every flush
            with contextlib.suppress(RedisError):
                self._context.stores.workers.forget(self._context.name)
            self._context.watch.stop()
            self._context.egress.close()
            self._context.runner.close()  # a pool's idle sandboxes go with their worker


def create_celery(settings: Settings) -> Celery:
    """The worker's Celery app; tasks receive ids and hand them to the worker logic."""
    app = Celery("agent-sandbox")
    app.conf.update(celery_config(settings))
    # Threads, not prefork: the work waits on Docker, and one process means one heartbeat that
    # dies with everything it was running. Celery's time limits need prefork; the runner's own
    # wall-clock kill is what bounds a run.
    app.conf.update(worker_pool="threads", broker_transport=TRANSPORT)
    process = _Process(settings)

    @worker_ready.connect(weak=False)
    def _on_ready(**_: Any) -> None:
        process.start()

    @worker_shutdown.connect(weak=False)
    def _on_shutdown(**_: Any) -> None:
        process.stop()

    @app.task(name=EXECUTE_TASK, ignore_result=True)
    def execute(execution_id: str, record: str | None = None) -> None:
        ExecutionWorker(process.context).execute(execution_id, record)

    return app
