"""Worker logic with a fake runner and a real Redis: claims, output, failures, session operations
on their own path, and the janitor's sweeps."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from executor_service.errors import NotFound, Overloaded, SandboxError, SessionEnded
from executor_service.jobs.dispatch import broker_task_ids
from executor_service.jobs.execution import Execution, ExecutionState
from executor_service.jobs.ids import utcnow
from executor_service.jobs.session import Session, SessionState
from executor_service.jobs.session_calls import SessionCaller
from executor_service.jobs.session_commands import (
    Content,
    Done,
    EndSession,
    FileEntry,
    ListFiles,
    Listing,
    ReadFile,
    SessionCommand,
    SessionOperation,
    StartSandbox,
    WriteFile,
)
from executor_service.jobs.store import Stores
from executor_service.jobs.tenant import ApiKey
from executor_service.sandbox.runner import OutputCallback
from executor_service.sandbox.spec import MAX_WALL_TIME_S, Program, RunResult, RunStatus
from executor_service.settings import Settings
from executor_service.worker.context import WorkerContext
from executor_service.worker.execution import ExecutionWorker, OutputForwarder
from executor_service.worker.janitor import Janitor
from executor_service.worker.session_op_server import SessionOpServer
from executor_service.worker.session_ops import SessionOperations
from tests.unit.service.conftest import worker_context_for
from tests.unit.service.fake_runner import FakeRunner, ok_result
from tests.unit.service.records import execution

pytestmark = pytest.mark.redis

KEY = ApiKey(key_id="k1", tenant="acme", max_concurrency=100, created_at=utcnow())


def submit(stores: Stores, record: Execution | None = None, **fields: Any) -> str:
    record = record or execution(**fields)
    stores.executions.create(record, key=KEY, max_queued=100)
    return record.id


def open_session(stores: Stores, ident: str = "se_1", **fields: Any) -> None:
    now = utcnow()
    values: dict[str, Any] = {
        "id": ident,
        "tenant": "acme",
        "policy": "default",
        "language": "python",
        "created_at": now,
        "last_used_at": now,
        "idle_timeout_s": 60,
        "max_lifetime_s": 600,
    }
    stores.sessions.create(Session.model_validate(values | fields), limit=8)


def perform(
    operations: SessionOperations, operation: SessionOperation, blob: bytes | None = None
) -> tuple[Any, bytes | None]:
    command = SessionCommand(
        id=uuid.uuid4().hex, session_id="se_1", claim_by=time.time() + 10, operation=operation
    )
    return operations.perform(command, blob)


# executions -------------------------------------------------------------------------------------


def test_held_output_is_written_at_a_tick_or_handed_to_the_finish_never_after(
    worker_context: WorkerContext,
) -> None:
    executions = worker_context.stores.executions
    ident = submit(worker_context.stores)
    output = OutputForwarder(executions, ident)
    output("stdout", b"a")
    output("stdout", b"b\xc3")  # half a character: held in the decoder, not as text
    output("stderr", b"oops")

    def streamed() -> list[tuple[str, str]]:
        events = executions.read_events(ident, "0-0", 0)
        return [(e.data["stream"], e.data["data"]) for e in events if e.kind == "output"]

    assert streamed() == []  # held
    output.tick()
    assert streamed() == [("stdout", "ab"), ("stderr", "oops")]
    output("stdout", b"\xa9!")
    assert output.close() == [("stdout", "\u00e9!")]  # for the finish, not written here
    output("stdout", b"late")  # a read racing the end: never written after it
    output.tick()
    assert streamed() == [("stdout", "ab"), ("stderr", "oops")]


def test_an_execution_runs_once_and_its_output_is_streamed(
    worker_context: WorkerContext, fake_runner: FakeRunner
) -> None:
    stores = worker_context.stores
    ident = submit(stores)
    worker = ExecutionWorker(worker_context)
    worker.execute(ident)
    worker.execute(ident)  # a redelivered message
    assert len(fake_runner.programs) == 1
    record = stores.executions.get(ident)
    assert record.state == ExecutionState.FINISHED
    assert record.claims == 1
    assert record.worker == "test-worker:1"
    assert record.result is not None
    assert record.result.stdout == "h\u00e9\n"
    assert fake_runner.prepared[0].labels == {"agent-sandbox.execution": ident}
    assert fake_runner.prepared[0].name == ident  # how its container is found, pooled or not
    events = stores.executions.read_events(ident, "0-0", 0)
    output = [e.data for e in events if e.kind == "output"]
    # The split character arrives whole: chunks are decoded incrementally.
    assert "".join(item["data"] for item in output) == "h\u00e9\n"
    assert [e.kind for e in events][-1] == "result"
    assert stores.executions.active_count("acme") == 0
    assert worker_context.metrics.outcomes() == {}  # counted, written with the second's others
    worker_context.metrics.flush()
    assert worker_context.metrics.outcomes() == {"finished:ok": 1}


def test_an_engine_failure_marks_the_execution_failed(
    worker_context: WorkerContext, fake_runner: FakeRunner
) -> None:
    def broken(*_: object) -> RunResult:
        raise SandboxError("engine down")

    fake_runner.script = broken
    ident = submit(worker_context.stores)
    ExecutionWorker(worker_context).execute(ident)
    record = worker_context.stores.executions.get(ident)
    assert record.state == ExecutionState.FAILED
    assert record.error is not None
    assert record.error.code == "sandbox_error"
    assert record.error.message == "engine down"
    assert set(fake_runner.destroyed) == {"fake-1"}


def test_an_unexpected_crash_is_recorded_not_lost(
    worker_context: WorkerContext, fake_runner: FakeRunner
) -> None:
    def crash(*_: object) -> RunResult:
        raise KeyError("bug")

    fake_runner.script = crash
    ident = submit(worker_context.stores)
    ExecutionWorker(worker_context).execute(ident)
    record = worker_context.stores.executions.get(ident)
    assert record.state == ExecutionState.FAILED
    assert record.error is not None
    assert record.error.code == "internal_error"
    assert "KeyError" in record.error.message
    assert record.result is None


def test_a_cancelled_execution_is_not_run(
    worker_context: WorkerContext, fake_runner: FakeRunner
) -> None:
    ident = submit(worker_context.stores)
    worker_context.stores.executions.cancel(ident, "acme")
    ExecutionWorker(worker_context).execute(ident)
    assert fake_runner.programs == []
    assert fake_runner.prepared == []


def test_cancel_reaches_the_running_program(
    worker_context: WorkerContext, fake_runner: FakeRunner
) -> None:
    started = threading.Event()

    def wait_for_cancel(
        _program: Program, out: OutputCallback | None, cancel: threading.Event | None
    ) -> RunResult:
        assert out is not None
        out("stdout", b"so far")
        started.set()
        assert cancel is not None
        assert cancel.wait(30), "the cancel flag never reached the runner"
        return RunResult(
            status=RunStatus.CANCELLED, exit_code=None, stdout="so far", stderr="", wall_time_s=1
        )

    fake_runner.script = wait_for_cancel
    stores = worker_context.stores
    ident = submit(stores)
    thread = threading.Thread(target=ExecutionWorker(worker_context).execute, args=(ident,))
    thread.start()
    assert started.wait(30)
    stores.executions.cancel(ident, "acme")
    thread.join(30)
    assert not thread.is_alive()
    record = stores.executions.get(ident)
    assert record.state == ExecutionState.CANCELLED
    assert record.result is not None
    assert record.result.status == RunStatus.CANCELLED
    assert record.result.stdout == "so far"


# sessions ---------------------------------------------------------------------------------------


def test_a_session_execution_runs_in_the_session_container(
    worker_context: WorkerContext, fake_runner: FakeRunner
) -> None:
    stores = worker_context.stores
    open_session(stores)
    operations = SessionOperations(worker_context)
    assert perform(operations, StartSandbox()) == (Done(), None)
    assert stores.sessions.get("se_1").container_id == "fake-1"
    assert fake_runner.prepared[0].labels == {"agent-sandbox.session": "se_1"}
    assert perform(operations, WriteFile(path="a.txt"), b"hi") == (Done(), None)
    assert perform(operations, ListFiles(max_entries=10)) == (
        Listing(files=(FileEntry(path="a.txt", size_bytes=2),), truncated=False),
        None,
    )
    assert perform(operations, ReadFile(path="a.txt", max_bytes=10)) == (Content(), b"hi")
    ident = submit(stores, session_id="se_1")
    ExecutionWorker(worker_context).execute(ident)
    assert stores.executions.get(ident).state == ExecutionState.FINISHED
    assert len(fake_runner.prepared) == 1  # no new container for the run
    assert fake_runner.destroyed == []
    assert perform(operations, EndSession()) == (Done(), None)
    assert stores.sessions.get("se_1").state == SessionState.DELETED
    assert fake_runner.destroyed_labels == [{"agent-sandbox.session": "se_1"}]


def test_a_listing_is_cut_at_its_bound_and_says_so(
    worker_context: WorkerContext, fake_runner: FakeRunner
) -> None:
    open_session(worker_context.stores)
    operations = SessionOperations(worker_context)
    perform(operations, StartSandbox())
    fake_runner.files["fake-1"] = {f"f{n}.txt": b"x" for n in range(5)}
    reply, _ = perform(operations, ListFiles(max_entries=3))
    assert isinstance(reply, Listing)
    assert [entry.path for entry in reply.files] == ["f0.txt", "f1.txt", "f2.txt"]
    assert reply.truncated


def test_an_operation_on_an_ended_session_is_refused(
    worker_context: WorkerContext, fake_runner: FakeRunner
) -> None:
    stores = worker_context.stores
    open_session(stores)
    operations = SessionOperations(worker_context)
    with pytest.raises(SessionEnded):
        perform(operations, ReadFile(path="a.txt", max_bytes=10))  # no container yet
    perform(operations, StartSandbox())
    perform(operations, EndSession())
    with pytest.raises(SessionEnded):
        perform(operations, WriteFile(path="a.txt"), b"hi")
    with pytest.raises(SessionEnded):
        perform(operations, StartSandbox())
    assert len(fake_runner.prepared) == 1
    ident = submit(stores, session_id="se_1")
    ExecutionWorker(worker_context).execute(ident)
    failed = stores.executions.get(ident)
    assert failed.state == ExecutionState.FAILED
    assert failed.error is not None
    assert failed.error.code == "session_ended"
    assert fake_runner.programs == []


def stop_serving(server: SessionOpServer) -> None:
    """Stop, and wait for the threads: one blocked in a take would still serve the next test's
    command (stop() neither joins them nor stops a take already waiting)."""
    server.stop()
    for thread in threading.enumerate():
        if thread.name.startswith("session-ops-"):
            thread.join(10)


@pytest.fixture
def op_server(worker_context: WorkerContext) -> Iterator[SessionOpServer]:
    server = SessionOpServer(worker_context)
    yield server
    stop_serving(server)


def test_session_operations_travel_to_the_worker_and_back(
    worker_context: WorkerContext, fake_runner: FakeRunner, op_server: SessionOpServer
) -> None:
    stores = worker_context.stores
    open_session(stores)
    op_server.start()
    caller = SessionCaller(stores.session_ops, worker_context.settings)
    assert caller.call("se_1", StartSandbox()) == (Done(), None)
    assert stores.sessions.get("se_1").container_id == "fake-1"
    content = b"\x00\xff\xfe not utf-8 \xc3("
    assert caller.call("se_1", WriteFile(path="data.bin"), content) == (Done(), None)
    assert fake_runner.files["fake-1"] == {"data.bin": content}
    assert caller.call("se_1", ReadFile(path="data.bin", max_bytes=100)) == (Content(), content)
    with pytest.raises(NotFound):
        caller.call("se_missing", StartSandbox())  # the worker's refusal, raised on this side
    assert caller.call("se_1", EndSession()) == (Done(), None)
    with pytest.raises(SessionEnded):
        caller.call("se_1", ListFiles(max_entries=10))


def test_an_operation_no_worker_took_in_time_never_happens(
    service_settings: Settings, fake_runner: FakeRunner
) -> None:
    settings = service_settings.model_copy(
        update={"session_op_claim_s": 0.3, "session_op_threads": 1}
    )
    context = worker_context_for(settings, fake_runner)
    open_session(context.stores)
    caller = SessionCaller(context.stores.session_ops, settings)
    with pytest.raises(Overloaded) as refused:
        caller.call("se_1", StartSandbox())  # no worker is serving yet
    assert refused.value.retry_after_s
    server = SessionOpServer(context)
    server.start()
    try:
        patient = SessionCaller(
            context.stores.session_ops, settings.model_copy(update={"session_op_claim_s": 10})
        )
        # One thread takes commands in order: once this is answered, the withdrawn one was seen.
        assert patient.call("se_1", StartSandbox()) == (Done(), None)
    finally:
        stop_serving(server)
    assert len(fake_runner.prepared) == 1


# janitor ----------------------------------------------------------------------------------------


def test_the_janitor_fails_executions_of_a_dead_worker(
    service_settings: Settings, fake_runner: FakeRunner
) -> None:
    context = worker_context_for(
        service_settings.model_copy(update={"heartbeat_ttl_s": 0.3}), fake_runner
    )
    stores = context.stores
    dead, live = submit(stores), submit(stores)
    stores.executions.claim(dead, "dead-worker:9")
    stores.executions.claim(live, "live-worker:1")
    janitor = Janitor(context)
    assert janitor.fail_lost_executions() == []  # claims younger than the grace are left alone
    time.sleep(0.4)
    stores.workers.heartbeat("live-worker:1")
    janitor.reconcile()
    failed = stores.executions.get(dead)
    assert failed.state == ExecutionState.FAILED
    assert failed.error is not None
    assert failed.error.code == "worker_lost"
    assert "worker lost" in failed.error.message
    assert stores.executions.get(live).state == ExecutionState.RUNNING
    assert dead in fake_runner.destroyed  # by name: a pool member has no execution label
    assert janitor.fail_lost_executions() == []
    assert context.metrics.outcomes() == {"failed": 1}


def test_the_janitor_fails_a_run_past_its_lease_whatever_the_heartbeats(
    worker_context: WorkerContext,
) -> None:
    stores = worker_context.stores
    short = submit(stores, execution().model_copy(update={"lease_s": 0.2}))
    long = submit(stores)
    for ident in (short, long):
        stores.executions.claim(ident, "live-worker:1")
    stores.workers.heartbeat("live-worker:1")
    janitor = Janitor(worker_context)
    assert janitor.expire_leases() == []
    time.sleep(0.3)
    stores.workers.heartbeat("live-worker:1")
    assert janitor.expire_leases() == [short]
    failed = stores.executions.get(short)
    assert failed.state == ExecutionState.FAILED
    assert failed.error is not None
    assert failed.error.code == "lease_expired"
    assert stores.executions.get(long).state == ExecutionState.RUNNING
    assert janitor.expire_leases() == []


def test_the_janitor_sends_a_lost_queued_execution_again_once(
    worker_context: WorkerContext,
) -> None:
    stores = worker_context.stores
    minute_ago = execution().model_copy(update={"created_at": utcnow() - timedelta(minutes=1)})
    lost = submit(stores, minute_ago)
    fresh = submit(stores)
    assert broker_task_ids(worker_context.broker) == set()
    janitor = Janitor(worker_context)
    assert janitor.requeue_lost() == 1
    assert broker_task_ids(worker_context.broker) == {lost}
    assert janitor.requeue_lost() == 0  # its message is in the broker now
    assert stores.executions.get(lost).state == ExecutionState.QUEUED
    assert fresh not in broker_task_ids(worker_context.broker)
    assert worker_context.metrics.outcomes() == {"requeued": 1}


def test_the_janitor_fails_an_execution_queued_too_long(worker_context: WorkerContext) -> None:
    stores = worker_context.stores
    ancient = execution().model_copy(update={"created_at": utcnow() - timedelta(hours=2)})
    ident = submit(stores, ancient)
    Janitor(worker_context).requeue_lost()
    failed = stores.executions.get(ident)
    assert failed.state == ExecutionState.FAILED
    assert failed.error is not None
    assert failed.error.code == "expired_in_queue"
    assert ident not in broker_task_ids(worker_context.broker)


def test_the_janitor_expires_idle_sessions(
    worker_context: WorkerContext, fake_runner: FakeRunner
) -> None:
    stores = worker_context.stores
    long_ago = utcnow() - timedelta(hours=1)
    for ident, last_used in (("se_idle", long_ago), ("se_fresh", utcnow())):
        open_session(
            stores, ident, created_at=long_ago, last_used_at=last_used, max_lifetime_s=7200
        )
    assert Janitor(worker_context).expire_sessions() == 1
    assert stores.sessions.get("se_idle").state == SessionState.EXPIRED
    assert stores.sessions.get("se_fresh").state == SessionState.ACTIVE
    assert stores.sessions.active_ids() == ["se_fresh"]
    assert fake_runner.destroyed_labels == [{"agent-sandbox.session": "se_idle"}]


def test_the_janitor_removes_egress_dirs_nothing_can_use(worker_context: WorkerContext) -> None:
    """An ended execution's and session's go, and an unknown one's older than any run; a running
    execution's, an active session's, a recent unknown one's and what is not ours stay."""
    stores = worker_context.stores
    running = submit(stores)
    assert stores.executions.claim(running, "w:1") is not None
    finished = submit(stores)
    stores.executions.claim(finished, "w:1")
    stores.executions.finish(finished, ok_result())
    open_session(stores, "se_live")
    open_session(stores, "se_gone")
    stores.sessions.update(
        "se_gone", lambda s: s.model_copy(update={"state": SessionState.DELETED})
    )
    root = worker_context.settings.egress_dir
    names = [running, finished, "se_live", "se_gone", "ex_old", "ex_recent", "lost+found"]
    for name in names:
        worker_context.egress.make_dir(root / name)
    long_ago = time.time() - MAX_WALL_TIME_S - worker_context.settings.lease_margin_s - 60
    os.utime(root / "ex_old", (long_ago, long_ago))
    assert Janitor(worker_context).sweep_egress_dirs() == 3
    left = sorted(path.name for path in root.iterdir())
    assert left == sorted([running, "se_live", "ex_recent", "lost+found"])


def test_ok_result_helper_is_ok() -> None:
    assert ok_result().status == RunStatus.OK
