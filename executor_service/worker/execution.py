"""Run one execution: claim it, plan it, run it in a sandbox, stream its output, record the end.

This module knows nothing of Celery; the task only passes an id here. Redis may fail at any
point: live output and cancel checks then degrade (the result still carries all the output), and
the final write is retried; if it still fails, the claim's lease lets the janitor end the record.
"""

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import structlog
from redis import RedisError

from executor_service.egress.audit import EgressRecord
from executor_service.errors import (
    InvalidRequest,
    NotFound,
    ServiceError,
    SessionEnded,
    StoreUnavailable,
)
from executor_service.jobs.event import OutputChunk
from executor_service.jobs.execution import Execution, ExecutionError, ExecutionState
from executor_service.jobs.ids import utcnow
from executor_service.jobs.metrics import MetricsBatch
from executor_service.jobs.session import Session, SessionKind, SessionState
from executor_service.jobs.store import ExecutionStore
from executor_service.policy.model import Policy
from executor_service.sandbox.runner import Sandbox, Stream
from executor_service.sandbox.spec import Program, RunResult
from executor_service.worker.context import WorkerContext
from executor_service.worker.session_ops import SESSION_LABEL

log = structlog.get_logger(__name__)

EXECUTION_LABEL = "agent-sandbox.execution"
T = TypeVar("T")


def retrying(write: Callable[[], T], budget_s: float) -> T:
    """Call `write` until Redis takes it, backing off from 0.1 s to 5 s, for at most budget_s."""
    deadline = time.monotonic() + budget_s
    pause = 0.1
    while True:
        try:
            return write()
        except (RedisError, StoreUnavailable):
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


class OutputForwarder:
    """Decode output as UTF-8 without splitting a character, and hold it for the event stream
    until the run's next tick (the run watch calls `tick`, every cancel_poll_s) or its final
    write (`close` hands over what is held), whichever comes first.

    One round trip per chunk was a tenth of a short run's worker CPU; now a run shorter than a
    tick writes its output with its end, and a chatty one once a tick. The lock keeps a tick's
    write ahead of the final one, so no output lands after the end on the stream.
    """

    def __init__(self, store: ExecutionStore, execution_id: str) -> None:
        self._store = store
        self._id = execution_id
        self._decoders = {
            "stdout": codecs.getincrementaldecoder("utf-8")(errors="replace"),
            "stderr": codecs.getincrementaldecoder("utf-8")(errors="replace"),
        }
        self._lock = threading.Lock()
        self._held: list[OutputChunk] = []
        self._closed = False
        self._warned = False

    def __call__(self, stream: Stream, data: bytes) -> None:
        text = self._decoders[stream].decode(data)
        if text:
            with self._lock:
                self._hold(stream, text)

    def tick(self) -> None:
        with self._lock:
            if self._held and not self._closed:
                self._write(self._held)
                self._held = []

    def close(self) -> list[OutputChunk]:
        """What is still held, with the decoders' last bytes; later ticks write nothing."""
        with self._lock:
            self._hold("stdout", self._decoders["stdout"].decode(b"", final=True))
            self._hold("stderr", self._decoders["stderr"].decode(b"", final=True))
            held, self._held, self._closed = self._held, [], True
        return held

    def flush(self) -> None:
        """Write what is held now (a run that ends without a finish: a failure)."""
        self._write(self.close())

    def _hold(self, stream: Stream, text: str) -> None:
        if not text:
            return
        if self._held and self._held[-1][0] == stream:
            self._held[-1] = (stream, self._held[-1][1] + text)
        else:
            self._held.append((stream, text))

    def _write(self, chunks: list[OutputChunk]) -> None:
        try:
            for stream, text in chunks:
                self._store.append_output(self._id, stream, text)
        except RedisError:
            # Live output is a courtesy: the result keeps every byte, so the run goes on.
            if not self._warned:
                log.warning("live output dropped: Redis unavailable", execution_id=self._id)
                self._warned = True


class EgressAudit:
    """Called by the proxy (off its event loop) once per connection: count every one, and put
    each denial on the event stream and in the worker's log as it happens."""

    def __init__(self, store: ExecutionStore, metrics: MetricsBatch, execution_id: str) -> None:
        self._store = store
        self._metrics = metrics
        self._id = execution_id

    def __call__(self, record: EgressRecord) -> None:
        self._metrics.count_egress(record.allowed, record.reason)
        if record.allowed:
            return
        log.info(
            "egress denied",
            execution_id=self._id,
            host=record.host,
            port=record.port,
            reason=record.reason,
        )
        try:
            self._store.append_egress(self._id, record)
        except RedisError:
            log.warning("egress denial not streamed: Redis unavailable", execution_id=self._id)


class ExecutionWorker:
    """One execution's run. Its Redis round trips are few on purpose (claim 1, finish 1 with the
    output held until then, and one a tick for output of a run longer than a tick; a session's
    run adds its read and its touch; its metrics go with the process's, once a second): on a
    warm path the service's own work must stay well under the engine's."""

    def __init__(self, context: WorkerContext) -> None:
        self._ctx = context

    def execute(self, execution_id: str, queued: str | None = None) -> None:
        """Claim and run one execution. `queued` is its record as admitted, when the message
        carried it: the claim then costs one round trip, not two."""
        # Its numbers join the process's pending ones, which the worker writes once a second.
        self._execute(execution_id, queued, self._ctx.metrics.pending)

    def _execute(self, execution_id: str, queued: str | None, metrics: MetricsBatch) -> None:
        ctx = self._ctx
        store = ctx.stores.executions
        bound = log.bind(execution_id=execution_id, worker=ctx.name)
        try:
            execution = store.claim(execution_id, ctx.name, queued)
        except NotFound:
            execution = None  # its record expired: a message far older than any run
        if execution is None:
            # Cancelled while queued, or a redelivered message of a claimed execution.
            bound.info("execution not claimable; skipped")
            return
        if execution.claimed_at is not None:
            wait = (execution.claimed_at - execution.created_at).total_seconds()
            metrics.observe("queue_wait_seconds", max(wait, 0.0))
        bound.info("execution claimed", language=execution.request.language)
        output = OutputForwarder(store, execution_id)
        try:
            result = self._run(execution, output, metrics)
        except ServiceError as exc:
            output.flush()
            self._fail(execution, ExecutionError(code=exc.code, message=exc.message), metrics)
            bound.warning("execution failed", code=exc.code)
            return
        except Exception as exc:  # noqa: BLE001 - the one place that turns any failure into a record
            bound.exception("execution crashed")
            output.flush()
            message = f"the worker failed: {type(exc).__name__}"
            error = ExecutionError(code="internal_error", message=message)
            self._fail(execution, error, metrics)
            return
        budget = ctx.settings.final_write_retry_s
        held = output.close()
        record, changed = retrying(
            lambda: store.finish(execution_id, result, claimed=execution, output=held), budget
        )
        if changed:
            metrics.count_outcome(f"finished:{result.status.value}")
            metrics.observe("run_seconds", result.wall_time_s)
        elif record.state == ExecutionState.CANCELLED:
            retrying(lambda: store.attach_partial_result(execution_id, result), budget)
        bound.info("execution ended", state=record.state.value, status=result.status.value)

    def _fail(self, execution: Execution, error: ExecutionError, metrics: MetricsBatch) -> None:
        store = self._ctx.stores.executions
        budget = self._ctx.settings.final_write_retry_s
        _, changed = retrying(lambda: store.fail(execution.id, error, claimed=execution), budget)
        if changed:
            metrics.count_outcome("failed")

    def _run(
        self, execution: Execution, output: OutputForwarder, metrics: MetricsBatch
    ) -> RunResult:
        ctx = self._ctx
        request = execution.request
        egress_log = EgressAudit(ctx.stores.executions, metrics, execution.id)
        with ctx.watch.watching(execution.id, output.tick) as cancel:
            if request.session_id is None:
                plan = ctx.planner.plan(
                    request,
                    labels={EXECUTION_LABEL: execution.id},
                    egress_name=execution.id,
                    name=execution.id,
                )
                with ctx.egress.opened(
                    plan.config.egress_dir, plan.egress, egress_log, remove_after=True
                ) as egress:
                    started = time.monotonic()
                    sandbox = ctx.runner.prepare(plan.config)
                    metrics.observe("container_start_seconds", time.monotonic() - started)
                    try:
                        result = ctx.runner.run(
                            sandbox, plan.program, on_output=output, cancel=cancel
                        )
                    except BaseException:
                        ctx.runner.destroy(sandbox.id)
                        raise
                return egress.attach(result)
            session, container_id = self._usable_session(request.session_id, execution.tenant)
            plan = ctx.planner.plan(
                request,
                labels={SESSION_LABEL: session.id},
                egress_name=session.id,
                sandbox_language=session.language,  # the session's image runs every language
            )
            handle = Sandbox(id=container_id, config=plan.config, single_use=False)
            program = plan.program
            if session.kind == SessionKind.INTERPRETER:
                program = self._as_cell(execution, plan.policy, program)
            try:
                with ctx.egress.opened(
                    plan.config.egress_dir, plan.egress, egress_log, remove_after=False
                ) as egress:
                    result = ctx.runner.run(handle, program, on_output=output, cancel=cancel)
                return egress.attach(result)
            finally:
                self._touch(session)

    def _as_cell(self, execution: Execution, policy: Policy, program: Program) -> Program:
        """An interpreter session runs the code as a cell of its kernel; the code's own file
        (main.py) is not written, the other files are placed as for any run."""
        request = execution.request
        if request.language != "python":
            # Not run as a plain program either: that path ends with killing what the run left
            # behind, which would be the kernel.
            raise InvalidRequest(
                f"an interpreter session runs Python cells only, not {request.language!r}; "
                "run it in a plain session",
                field="language",
            )
        if request.code is None:
            raise InvalidRequest(
                "an interpreter session runs `code` as a cell; put what the files should do in "
                "code (they are placed in the workspace first)",
                field="code",
            )
        _, runtime = self._ctx.planner.runtime(policy, request.language)
        files = {path: data for path, data in program.files.items() if path != runtime.file}
        return replace(program, cell=request.code, files=files)

    def _usable_session(self, session_id: str, tenant: str) -> tuple[Session, str]:
        sessions = self._ctx.stores.sessions
        session = sessions.get(session_id, tenant)
        if session.state != SessionState.ACTIVE or session.container_id is None:
            raise SessionEnded(
                f"session {session_id} is {session.state.value}; open a new one", field="session_id"
            )
        # Not touched here: the busy flag keeps a running session from idling out, and `_touch`
        # marks it used when the run ends (one write per run, not two).
        return session, session.container_id

    def _touch(self, session: Session) -> None:
        """Mark the session used; one round trip while nobody changed it during the run."""
        used = utcnow()
        try:
            self._ctx.stores.sessions.update(
                session.id,
                lambda current: current.model_copy(update={"last_used_at": used}),
                known=session,
            )
        except RedisError:
            log.warning("could not mark the session used", session_id=session.id)
