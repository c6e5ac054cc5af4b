"""Worker logic with a fake runner and a real Redis: claims, output, failures, the janitor."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from executor_service.errors import SandboxError
from executor_service.jobs.execution import ExecutionState
from executor_service.jobs.ids import utcnow
from executor_service.jobs.redis_store import RedisJobStore
from executor_service.jobs.session import Session, SessionState
from executor_service.sandbox.runner import OutputCallback
from executor_service.sandbox.spec import Program, RunResult, RunStatus
from executor_service.worker.context import WorkerContext
from executor_service.worker.execution import ExecutionWorker
from executor_service.worker.janitor import Janitor
from executor_service.worker.session_ops import SessionOperations
from tests.unit.service.fake_runner import FakeRunner, ok_result
from tests.unit.service.records import execution

pytestmark = pytest.mark.redis


def submit(store: RedisJobStore, **fields: str) -> str:
    record = execution(**fields)
    store.create_execution(record, max_active=100, max_queued=100)
    return record.id


def test_an_execution_runs_once_and_its_output_is_streamed(
    worker_context: WorkerContext, store: RedisJobStore, fake_runner: FakeRunner
) -> None:
    ident = submit(store)
    worker = ExecutionWorker(worker_context)
    worker.execute(ident)
    worker.execute(ident)  # a redelivered message
    assert len(fake_runner.programs) == 1
    record = store.get_execution(ident)
    assert record.state == ExecutionState.FINISHED
    assert record.claims == 1
    assert record.result is not None
    assert record.result.stdout == "h\u00e9\n"
    assert fake_runner.prepared[0].labels == {"agent-sandbox.execution": ident}
    output = [e.data for e in store.read_events(ident, "0-0", 0) if e.kind == "output"]
    # The split character arrives whole: chunks are decoded incrementally.
    assert "".join(item["data"] for item in output) == "h\u00e9\n"


def test_an_engine_failure_marks_the_execution_failed(
    worker_context: WorkerContext, store: RedisJobStore, fake_runner: FakeRunner
) -> None:
    def broken(*_: object) -> RunResult:
        raise SandboxError("engine down")

    fake_runner.script = broken
    ident = submit(store)
    ExecutionWorker(worker_context).execute(ident)
    record = store.get_execution(ident)
    assert record.state == ExecutionState.FAILED
    assert record.error is not None
    assert record.error.code == "sandbox_error"
    assert set(fake_runner.destroyed) == {"fake-1"}


def test_an_unexpected_crash_is_recorded_not_lost(
    worker_context: WorkerContext, store: RedisJobStore, fake_runner: FakeRunner
) -> None:
    def crash(*_: object) -> RunResult:
        raise KeyError("bug")

    fake_runner.script = crash
    ident = submit(store)
    ExecutionWorker(worker_context).execute(ident)
    record = store.get_execution(ident)
    assert record.state == ExecutionState.FAILED
    assert record.error is not None
    assert record.error.code == "internal_error"
    assert record.result is None


def test_cancel_reaches_the_running_program(
    worker_context: WorkerContext, store: RedisJobStore, fake_runner: FakeRunner
) -> None:
    started = threading.Event()

    def wait_for_cancel(
        _program: Program, _out: OutputCallback | None, cancel: threading.Event | None
    ) -> RunResult:
        started.set()
        assert cancel is not None
        assert cancel.wait(30), "the cancel flag never reached the runner"
        return RunResult(
            status=RunStatus.CANCELLED, exit_code=None, stdout="", stderr="", wall_time_s=1
        )

    fake_runner.script = wait_for_cancel
    ident = submit(store)
    thread = threading.Thread(target=ExecutionWorker(worker_context).execute, args=(ident,))
    thread.start()
    assert started.wait(30)
    store.cancel(ident, "acme")
    thread.join(30)
    record = store.get_execution(ident)
    assert record.state == ExecutionState.CANCELLED
    assert record.result is not None
    assert record.result.status == RunStatus.CANCELLED


def test_a_session_execution_runs_in_the_session_container(
    worker_context: WorkerContext, store: RedisJobStore, fake_runner: FakeRunner
) -> None:
    now = utcnow()
    session = Session(
        id="se_1",
        tenant="acme",
        policy="default",
        language="python",
        created_at=now,
        last_used_at=now,
        idle_timeout_s=60,
        max_lifetime_s=600,
    )
    store.create_session(session)
    operations = SessionOperations(worker_context)
    operations.perform("create", "se_1", {})
    container = store.get_session("se_1").container_id
    assert container == "fake-1"
    operations.perform("put", "se_1", {"path": "a.txt", "content": "aGk="})
    assert operations.perform("list", "se_1", {}) == {"files": [{"path": "a.txt", "size_bytes": 2}]}
    ident = submit(store, session_id="se_1")
    ExecutionWorker(worker_context).execute(ident)
    assert store.get_execution(ident).state == ExecutionState.FINISHED
    assert len(fake_runner.prepared) == 1  # no new container for the run
    assert fake_runner.destroyed == []
    operations.perform("delete", "se_1", {})
    assert store.get_session("se_1").state == SessionState.DELETED
    assert fake_runner.destroyed_labels == [{"agent-sandbox.session": "se_1"}]


def test_the_janitor_fails_executions_of_a_dead_worker(
    worker_context: WorkerContext, store: RedisJobStore, fake_runner: FakeRunner
) -> None:
    ident = submit(store)
    store.claim(ident, "dead-worker:9")
    live = submit(store)
    store.claim(live, "live-worker:1")
    store.heartbeat("live-worker:1")
    # Both claims are older than the heartbeat TTL, so only liveness decides.
    for name in (ident, live):
        key = f"as:ex:{name}"
        record = store.get_execution(name)
        old = record.model_copy(update={"claimed_at": utcnow() - timedelta(minutes=5)})
        store.client.set(key, old.model_dump_json())
    janitor = Janitor(worker_context)
    assert janitor.fail_lost_executions() == 1
    failed = store.get_execution(ident)
    assert failed.state == ExecutionState.FAILED
    assert failed.error is not None
    assert "worker lost" in failed.error.message
    assert store.get_execution(live).state == ExecutionState.RUNNING
    assert fake_runner.destroyed_labels == [{"agent-sandbox.execution": ident}]


def test_the_janitor_expires_idle_sessions(
    worker_context: WorkerContext, store: RedisJobStore, fake_runner: FakeRunner
) -> None:
    long_ago = utcnow() - timedelta(hours=1)
    for ident, last_used in (("se_idle", long_ago), ("se_fresh", utcnow())):
        store.create_session(
            Session(
                id=ident,
                tenant="acme",
                policy="default",
                language="python",
                created_at=long_ago,
                last_used_at=last_used,
                idle_timeout_s=60,
                max_lifetime_s=7200,
            )
        )
    assert Janitor(worker_context).expire_sessions() == 1
    assert store.get_session("se_idle").state == SessionState.EXPIRED
    assert store.get_session("se_fresh").state == SessionState.ACTIVE
    assert store.active_session_ids() == ["se_fresh"]
    assert fake_runner.destroyed_labels == [{"agent-sandbox.session": "se_idle"}]


def test_ok_result_helper_is_ok() -> None:
    assert ok_result().status == RunStatus.OK
