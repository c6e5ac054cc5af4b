"""Run one execution: claim it, plan it, run it in a sandbox, stream its output, record the end.

This module knows nothing of Celery; the task only passes an id here.
"""

from __future__ import annotations

import codecs
import threading
import time

import structlog

from executor_service.errors import ServiceError, SessionEnded
from executor_service.jobs.execution import Execution, ExecutionError, ExecutionState
from executor_service.jobs.ids import utcnow
from executor_service.jobs.session import Session, SessionState
from executor_service.jobs.store import JobStore
from executor_service.sandbox.runner import Sandbox, Stream
from executor_service.sandbox.spec import RunResult
from executor_service.worker.context import WorkerContext

log = structlog.get_logger(__name__)

EXECUTION_LABEL = "agent-sandbox.execution"
SESSION_LABEL = "agent-sandbox.session"


class OutputForwarder:
    """Decode output as UTF-8 without splitting a character, and append it to the event stream."""

    def __init__(self, store: JobStore, execution_id: str) -> None:
        self._store = store
        self._id = execution_id
        self._decoders = {
            "stdout": codecs.getincrementaldecoder("utf-8")(errors="replace"),
            "stderr": codecs.getincrementaldecoder("utf-8")(errors="replace"),
        }

    def __call__(self, stream: Stream, data: bytes) -> None:
        text = self._decoders[stream].decode(data)
        if text:
            self._store.append_output(self._id, stream, text)

    def flush(self) -> None:
        for stream, decoder in self._decoders.items():
            text = decoder.decode(b"", final=True)
            if text:
                self._store.append_output(
                    self._id, "stdout" if stream == "stdout" else "stderr", text
                )


class CancelWatcher:
    """Turn the store's cancel flag into the threading.Event the runner watches."""

    def __init__(self, store: JobStore, execution_id: str, poll_s: float) -> None:
        self.event = threading.Event()
        self._store = store
        self._id = execution_id
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name=f"cancel-{execution_id}", daemon=True
        )

    def __enter__(self) -> threading.Event:
        self._thread.start()
        return self.event

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self._poll_s):
            if self._store.cancel_requested(self._id):
                self.event.set()
                return


class ExecutionWorker:
    def __init__(self, context: WorkerContext) -> None:
        self._ctx = context

    def execute(self, execution_id: str) -> None:
        ctx = self._ctx
        bound = log.bind(execution_id=execution_id, worker=ctx.name)
        execution = ctx.store.claim(execution_id, ctx.name)
        if execution is None:
            # Cancelled while queued, or a redelivered message of a claimed execution.
            bound.info("execution not claimable; skipped")
            return
        if execution.claimed_at is not None:
            wait = (execution.claimed_at - execution.created_at).total_seconds()
            ctx.metrics.observe("queue_wait_seconds", max(wait, 0.0))
        bound.info("execution claimed", language=execution.request.language)
        try:
            result = self._run(execution)
        except ServiceError as exc:
            self._fail(execution, ExecutionError(code=exc.code, message=exc.message))
            bound.warning("execution failed", code=exc.code)
            return
        except Exception as exc:  # noqa: BLE001 - the one place that turns any failure into a record
            bound.exception("execution crashed")
            message = f"the worker failed: {type(exc).__name__}"
            self._fail(execution, ExecutionError(code="internal_error", message=message))
            return
        record, changed = ctx.store.finish(execution_id, result)
        if changed:
            ctx.metrics.count_outcome(f"finished:{result.status.value}")
            ctx.metrics.observe("run_seconds", result.wall_time_s)
        elif record.state == ExecutionState.CANCELLED:
            ctx.store.attach_partial_result(execution_id, result)
        bound.info("execution ended", state=record.state.value, status=result.status.value)

    def _fail(self, execution: Execution, error: ExecutionError) -> None:
        _, changed = self._ctx.store.fail(execution.id, error)
        if changed:
            self._ctx.metrics.count_outcome("failed")

    def _run(self, execution: Execution) -> RunResult:
        ctx = self._ctx
        request = execution.request
        output = OutputForwarder(ctx.store, execution.id)
        with CancelWatcher(ctx.store, execution.id, ctx.settings.cancel_poll_s) as cancel:
            try:
                if request.session_id is None:
                    plan = ctx.planner.plan(request, labels={EXECUTION_LABEL: execution.id})
                    started = time.monotonic()
                    sandbox = ctx.runner.prepare(plan.config)
                    ctx.metrics.observe("container_start_seconds", time.monotonic() - started)
                    try:
                        return ctx.runner.run(
                            sandbox, plan.program, on_output=output, cancel=cancel
                        )
                    except BaseException:
                        ctx.runner.destroy(sandbox.id)
                        raise
                session, container_id = self._usable_session(request.session_id, execution.tenant)
                plan = ctx.planner.plan(request, labels={SESSION_LABEL: session.id})
                handle = Sandbox(id=container_id, config=plan.config, single_use=False)
                try:
                    return ctx.runner.run(handle, plan.program, on_output=output, cancel=cancel)
                finally:
                    ctx.store.update_session(
                        session.id,
                        lambda current: current.model_copy(update={"last_used_at": utcnow()}),
                    )
            finally:
                output.flush()

    def _usable_session(self, session_id: str, tenant: str) -> tuple[Session, str]:
        session = self._ctx.store.get_session(session_id, tenant)
        if session.state != SessionState.ACTIVE or session.container_id is None:
            raise SessionEnded(
                f"session {session_id} is {session.state.value}; open a new one", field="session_id"
            )
        touched = self._ctx.store.update_session(
            session_id, lambda current: current.model_copy(update={"last_used_at": utcnow()})
        )
        return touched, session.container_id
