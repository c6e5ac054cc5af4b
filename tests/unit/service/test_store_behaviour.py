"""One behaviour suite for both implementations of the stores: Redis (a real server) and memory.

Unit tests elsewhere trust the in-memory stores to behave as Redis does; every test here runs
against both, so a difference between them fails one side.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from executor_service.errors import NotFound, Overloaded, QuotaExceeded, SessionBusy
from executor_service.jobs.dispatch import QueueEntry
from executor_service.jobs.execution import Execution, ExecutionError, ExecutionState
from executor_service.jobs.ids import new_id, utcnow
from executor_service.jobs.memory.executions import MemoryExecutionStore
from executor_service.jobs.memory_store import memory_stores
from executor_service.jobs.redis_store import redis_stores
from executor_service.jobs.session import Session, SessionState
from executor_service.jobs.session_commands import (
    Content,
    Done,
    FileEntry,
    Listing,
    ReadFile,
    Refused,
    SessionCommand,
    StartSandbox,
    WriteFile,
)
from executor_service.jobs.store import Stores
from executor_service.jobs.tenant import ApiKey, new_key
from executor_service.sandbox.spec import RunResult, RunStatus
from executor_service.settings import Settings
from tests.unit.service.records import execution, session

RESULT = RunResult(status=RunStatus.OK, exit_code=0, stdout="1\n", stderr="", wall_time_s=0.1)


@dataclass(frozen=True)
class Backend:
    name: str
    make: Callable[..., Stores]  # stores on settings with these fields changed
    sent: Callable[[Stores, str], list[str]]  # the messages on a broker list, newest first


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis), "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "redis":
        settings: Settings = request.getfixturevalue("service_settings")

        def on_redis(**changes: Any) -> Stores:
            return redis_stores(settings.model_copy(update=changes))[0]

        client = redis.Redis.from_url(settings.redis_url, decode_responses=True)

        def on_the_list(_: Stores, queue: str) -> list[str]:
            return client.lrange(queue, 0, -1)  # type: ignore[return-value]

        yield Backend("redis", on_redis, on_the_list)
        client.close()
        return
    base = Settings(
        state_dir=tmp_path / "state", heartbeat_ttl_s=5, result_ttl_s=600, cancel_poll_s=0.05
    )

    def in_memory(stores: Stores, queue: str) -> list[str]:
        assert isinstance(stores.executions, MemoryExecutionStore)
        return stores.executions.sent[queue]

    yield Backend(
        "memory", lambda **changes: memory_stores(base.model_copy(update=changes)), in_memory
    )


@pytest.fixture
def stores(backend: Backend) -> Stores:
    return backend.make()


def key(tenant: str = "acme", **bounds: int) -> ApiKey:
    return ApiKey(key_id=new_id("k"), tenant=tenant, created_at=utcnow(), **bounds)


ROOMY = key(max_concurrency=100)


def submit(stores: Stores, record: Execution | None = None, **bounds: int) -> Execution:
    record = record or execution()
    limits = {"max_concurrency": 100} | bounds
    stores.executions.create(record, key=key(record.tenant, **limits), max_queued=100)
    return record


def command(operation: Any = None) -> SessionCommand:
    return SessionCommand(
        id=new_id("op"),
        session_id="se_1",
        claim_by=time.time() + 10,
        operation=operation or StartSandbox(),
    )


def stream_order(ident: str) -> tuple[int, int]:
    ms, seq = ident.split("-")
    return int(ms), int(seq)


# executions: admission --------------------------------------------------------------------------


def test_a_record_is_only_visible_to_its_tenant(stores: Stores) -> None:
    record = submit(stores, execution("acme"))
    assert stores.executions.get(record.id, "acme").id == record.id
    assert stores.executions.get(record.id).id == record.id
    with pytest.raises(NotFound):
        stores.executions.get(record.id, "other")
    with pytest.raises(NotFound):
        stores.executions.cancel(record.id, "other")
    assert stores.executions.newest("other", 10) == []
    assert stores.executions.get(record.id).state == ExecutionState.QUEUED


def test_quota_counts_queued_and_running_and_frees_on_the_end(stores: Stores) -> None:
    executions, bound = stores.executions, key(max_concurrency=2)
    first, second = execution(), execution()
    executions.create(first, key=bound, max_queued=100)
    executions.create(second, key=bound, max_queued=100)
    executions.claim(first.id, "w")
    assert executions.active_count("acme") == 2
    with pytest.raises(QuotaExceeded) as refused:
        executions.create(execution(), key=bound, max_queued=100)
    assert "at most 2 executions" in refused.value.message
    assert refused.value.retry_after_s == 5
    executions.create(execution("another-tenant"), key=key("another-tenant"), max_queued=100)
    executions.finish(first.id, RESULT)
    assert executions.active_count("acme") == 1
    executions.create(execution(), key=bound, max_queued=100)
    assert executions.active_count("acme") == 2


def test_a_full_queue_is_refused_before_any_quota(stores: Stores) -> None:
    one = key(max_concurrency=1)
    stores.executions.create(execution(), key=one, max_queued=1)
    with pytest.raises(Overloaded) as refused:
        stores.executions.create(execution(), key=one, max_queued=1)
    assert refused.value.message == "the queue is full; retry later"
    assert refused.value.retry_after_s == 5
    with pytest.raises(Overloaded):
        stores.executions.create(execution("b"), key=key("b"), max_queued=1)
    assert stores.executions.queue_length() == 1
    assert stores.executions.active_count("b") == 0


def test_the_task_message_is_queued_with_the_record_and_only_if_admitted(
    backend: Backend, stores: Stores
) -> None:
    made: list[str] = []

    def message(stored: str) -> QueueEntry:
        made.append(stored)
        return QueueEntry("test-queue", f"task:{len(made)}")

    one = key(max_concurrency=1)
    first, second = execution(), execution()
    stored = stores.executions.create(first, key=one, max_queued=10, message=message)
    assert made == [stored]  # the message is made from the record exactly as stored
    assert Execution.model_validate_json(stored) == stores.executions.get(first.id)
    with pytest.raises(QuotaExceeded):
        stores.executions.create(second, key=one, max_queued=10, message=message)
    assert backend.sent(stores, "test-queue") == ["task:1"]  # the refused one left none
    stores.executions.create(second, key=ROOMY, max_queued=10, message=message)
    assert backend.sent(stores, "test-queue") == ["task:3", "task:1"]  # LPUSH: newest first


def test_a_running_execution_leaves_the_queue(stores: Stores) -> None:
    record = submit(stores)
    stores.executions.claim(record.id, "w")
    assert stores.executions.queue_length() == 0
    stores.executions.create(execution(), key=ROOMY, max_queued=1)


def test_a_session_runs_one_execution_at_a_time(stores: Stores) -> None:
    first = submit(stores, execution(session_id="se_1"))
    with pytest.raises(SessionBusy) as refused:
        submit(stores, execution(session_id="se_1"))
    assert refused.value.field == "session_id"
    submit(stores, execution(session_id="se_2"))
    stores.executions.claim(first.id, "w")
    with pytest.raises(SessionBusy):
        submit(stores, execution(session_id="se_1"))
    stores.executions.fail(first.id, ExecutionError(code="x", message="y"))
    submit(stores, execution(session_id="se_1"))


def test_a_refused_execution_takes_no_session_and_no_slot(stores: Stores) -> None:
    submit(stores)
    with pytest.raises(QuotaExceeded):
        submit(stores, execution(session_id="se_1"), max_concurrency=1)
    assert stores.executions.active_count("acme") == 1
    submit(stores, execution(session_id="se_1"))


def test_newest_is_newest_first_and_bounded(stores: Stores) -> None:
    records = [submit(stores) for _ in range(5)]
    listed = stores.executions.newest("acme", 3)
    assert [item.id for item in listed] == [record.id for record in reversed(records)][:3]
    assert len(stores.executions.newest("acme", 10)) == 5


# executions: transitions ------------------------------------------------------------------------


def test_only_one_of_many_concurrent_claimers_wins(stores: Stores) -> None:
    records = [submit(stores) for _ in range(20)]
    winners: list[tuple[str, str]] = []
    lock = threading.Lock()

    def claim_all(worker: str) -> None:
        for record in records:
            if stores.executions.claim(record.id, worker) is not None:
                with lock:
                    winners.append((record.id, worker))

    threads = [threading.Thread(target=claim_all, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ident for ident, _ in winners) == sorted(record.id for record in records)
    for ident, worker in winners:
        stored = stores.executions.get(ident)
        assert stored.state == ExecutionState.RUNNING
        assert stored.claims == 1
        assert stored.worker == worker
    assert stores.executions.queue_length() == 0
    assert stores.executions.running_ids() == sorted(record.id for record in records)


def test_a_claim_sets_the_lease_and_an_ended_lease_is_listed(stores: Stores) -> None:
    record = submit(stores, execution().model_copy(update={"lease_s": 30.0}))
    claimed = stores.executions.claim(record.id, "w")
    assert claimed is not None
    assert claimed.claimed_at is not None
    assert claimed.started_at == claimed.claimed_at
    assert claimed.lease_expires_at == claimed.claimed_at + timedelta(seconds=30)
    assert stores.executions.get(record.id).lease_expires_at == claimed.lease_expires_at
    lease_end = claimed.lease_expires_at.timestamp()
    assert stores.executions.expired_leases(time.time()) == []
    assert stores.executions.expired_leases(lease_end - 1) == []
    assert stores.executions.expired_leases(lease_end + 1) == [record.id]
    stores.executions.finish(record.id, RESULT)
    assert stores.executions.expired_leases(lease_end + 1) == []
    assert stores.executions.running_ids() == []


def test_expired_leases_are_listed_soonest_first(stores: Stores) -> None:
    short = submit(stores, execution().model_copy(update={"lease_s": 10.0}))
    long = submit(stores, execution().model_copy(update={"lease_s": 20.0}))
    queued = submit(stores, execution().model_copy(update={"lease_s": 0.0}))
    stores.executions.claim(long.id, "w")
    stores.executions.claim(short.id, "w")
    assert stores.executions.expired_leases(time.time() + 60) == [short.id, long.id]
    assert queued.id not in stores.executions.expired_leases(time.time() + 60)


def test_queued_before_lists_old_queued_executions_oldest_first(stores: Stores) -> None:
    now = utcnow()

    def created(minutes_ago: int) -> Execution:
        return submit(
            stores,
            execution().model_copy(update={"created_at": now - timedelta(minutes=minutes_ago)}),
        )

    middle, oldest, young, claimed = created(10), created(20), created(1), created(30)
    stores.executions.claim(claimed.id, "w")
    five_minutes_ago = (now - timedelta(minutes=5)).timestamp()
    assert stores.executions.queued_before(five_minutes_ago) == [oldest.id, middle.id]
    assert stores.executions.queued_before(time.time()) == [oldest.id, middle.id, young.id]
    assert stores.executions.queued_before(oldest.created_at.timestamp()) == [oldest.id]
    stores.executions.cancel(oldest.id, "acme")
    assert stores.executions.queued_before(five_minutes_ago) == [middle.id]


def test_only_the_allowed_transitions_happen(stores: Stores) -> None:
    record = submit(stores)
    queued, changed = stores.executions.finish(record.id, RESULT)
    assert not changed
    assert queued.state == ExecutionState.QUEUED
    running = frozenset({ExecutionState.RUNNING})
    error = ExecutionError(code="lost", message="gone")
    _, changed = stores.executions.fail(record.id, error, only_from=running)
    assert not changed
    assert stores.executions.claim(record.id, "w") is not None
    assert stores.executions.claim(record.id, "w2") is None
    failed, changed = stores.executions.fail(record.id, error, only_from=running)
    assert changed
    assert failed.state == ExecutionState.FAILED
    assert failed.error == error
    assert failed.finished_at is not None
    for attempt in (
        lambda: stores.executions.finish(record.id, RESULT),
        lambda: stores.executions.fail(record.id, error),
        lambda: stores.executions.cancel(record.id, "acme"),
    ):
        after, changed = attempt()
        assert not changed
        assert after.state == ExecutionState.FAILED
    assert stores.executions.claim(record.id, "w") is None
    assert stores.executions.get(record.id).claims == 1


def test_a_transition_of_an_unknown_execution_is_not_found(stores: Stores) -> None:
    error = ExecutionError(code="x", message="y")
    for attempt in (
        lambda: stores.executions.claim("ex_missing", "w"),
        lambda: stores.executions.finish("ex_missing", RESULT),
        lambda: stores.executions.fail("ex_missing", error),
        lambda: stores.executions.cancel("ex_missing", "acme"),
    ):
        with pytest.raises(NotFound):
            attempt()


def test_a_finished_record_keeps_its_result(stores: Stores) -> None:
    record = submit(stores)
    stores.executions.claim(record.id, "w")
    finished, changed = stores.executions.finish(record.id, RESULT)
    assert changed
    assert finished.state == ExecutionState.FINISHED
    assert stores.executions.get(record.id).result == RESULT
    assert stores.executions.active_count("acme") == 0
    assert not stores.executions.cancel_requested(record.id)


def test_cancel_of_a_queued_execution_stops_its_claim(stores: Stores) -> None:
    record = submit(stores)
    cancelled, changed = stores.executions.cancel(record.id, "acme")
    assert changed
    assert cancelled.state == ExecutionState.CANCELLED
    assert stores.executions.claim(record.id, "w") is None
    assert stores.executions.active_count("acme") == 0
    assert stores.executions.queue_length() == 0


def test_the_record_a_message_carries_claims_once_and_not_after_a_cancel(stores: Stores) -> None:
    first, second = execution(), execution()
    limits = key("acme", max_concurrency=100)
    queued = [stores.executions.create(r, key=limits, max_queued=100) for r in (first, second)]
    assert [Execution.model_validate_json(raw) for raw in queued] == [first, second]
    claimed = stores.executions.claim(first.id, "w", queued[0])
    assert claimed is not None
    assert claimed.state == ExecutionState.RUNNING
    assert stores.executions.claim(first.id, "w2", queued[0]) is None  # a redelivered message
    stores.executions.cancel(second.id, "acme")
    assert stores.executions.claim(second.id, "w", queued[1]) is None  # stale: it was cancelled
    assert stores.executions.get(second.id).state == ExecutionState.CANCELLED


def test_held_output_goes_before_the_end_and_only_with_a_finish_that_applies(
    stores: Stores,
) -> None:
    done, cancelled = submit(stores), submit(stores)
    for record in (done, cancelled):
        stores.executions.claim(record.id, "w")
    stores.executions.cancel(cancelled.id, "acme")
    for record in (done, cancelled):
        stores.executions.finish(record.id, RESULT, output=[("stdout", "held\n")])
    kinds = [e.kind for e in stores.executions.read_events(done.id, "0-0", 0)]
    assert kinds == ["state", "state", "output", "state", "result"]
    kinds = [e.kind for e in stores.executions.read_events(cancelled.id, "0-0", 0)]
    assert "output" not in kinds  # the stream ended with the cancel; the result keeps it all


def test_cancel_flags_of_many_runs_are_read_at_once(stores: Stores) -> None:
    first, second, third = submit(stores), submit(stores), submit(stores)
    for record in (first, second, third):
        stores.executions.claim(record.id, "w")
    assert stores.executions.cancels_requested([]) == set()
    stores.executions.cancel(second.id, "acme")
    ids = [first.id, second.id, third.id, "ex_missing"]
    assert stores.executions.cancels_requested(ids) == {second.id}


def test_finish_from_the_claimed_record_is_checked_like_any_other(stores: Stores) -> None:
    record = submit(stores)
    claimed = stores.executions.claim(record.id, "w")
    assert claimed is not None
    finished, changed = stores.executions.finish(record.id, RESULT, claimed=claimed)
    assert changed
    assert finished.state == ExecutionState.FINISHED
    again, changed = stores.executions.finish(record.id, RESULT, claimed=claimed)
    assert not changed
    assert again.state == ExecutionState.FINISHED
    error = ExecutionError(code="x", message="y")
    assert not stores.executions.fail(record.id, error, claimed=claimed)[1]


def test_cancel_of_a_running_execution_raises_the_flag_and_wins_over_finish(
    stores: Stores,
) -> None:
    record = submit(stores)
    stores.executions.claim(record.id, "w")
    assert not stores.executions.cancel_requested(record.id)
    stores.executions.cancel(record.id, "acme")
    assert stores.executions.cancel_requested(record.id)
    assert stores.executions.running_ids() == []
    partial = RESULT.model_copy(update={"status": RunStatus.CANCELLED})
    after, changed = stores.executions.finish(record.id, partial)
    assert not changed
    assert after.state == ExecutionState.CANCELLED
    stores.executions.attach_partial_result(record.id, partial)
    stored = stores.executions.get(record.id)
    assert stored.state == ExecutionState.CANCELLED
    assert stored.result == partial
    stores.executions.attach_partial_result(record.id, RESULT)
    assert stores.executions.get(record.id).result == partial
    _, again = stores.executions.cancel(record.id, "acme")
    assert not again


def test_a_partial_result_only_goes_on_a_cancelled_record(stores: Stores) -> None:
    record = submit(stores)
    stores.executions.claim(record.id, "w")
    stores.executions.attach_partial_result(record.id, RESULT)
    assert stores.executions.get(record.id).result is None
    stores.executions.attach_partial_result("ex_missing", RESULT)


# executions: events -----------------------------------------------------------------------------


def test_events_replay_in_order_for_a_late_reader(stores: Stores) -> None:
    record = submit(stores)
    stores.executions.claim(record.id, "w")
    stores.executions.append_output(record.id, "stdout", "hello ")
    stores.executions.append_output(record.id, "stderr", "oops")
    stores.executions.finish(record.id, RESULT)
    events = stores.executions.read_events(record.id, "0-0", block_ms=0)
    assert [(event.kind, event.data) for event in events] == [
        ("state", {"state": "queued"}),
        ("state", {"state": "running"}),
        ("output", {"stream": "stdout", "data": "hello "}),
        ("output", {"stream": "stderr", "data": "oops"}),
        ("state", {"state": "finished"}),
        ("result", {}),
    ]
    after = stores.executions.read_events(record.id, events[2].id, block_ms=0)
    assert [event.id for event in after] == [event.id for event in events[3:]]
    assert stores.executions.read_events(record.id, events[-1].id, block_ms=0) == []


def test_event_ids_are_stream_ids_that_only_grow(stores: Stores) -> None:
    record = submit(stores)
    for n in range(50):
        stores.executions.append_output(record.id, "stdout", str(n))
    ids = [event.id for event in stores.executions.read_events(record.id, "0-0", block_ms=0)]
    assert len(ids) == 51
    order = [stream_order(ident) for ident in ids]
    assert order == sorted(order)
    assert len(set(order)) == len(order)
    assert order[0][0] >= int((time.time() - 60) * 1000)  # milliseconds since the epoch
    assert stores.executions.read_events("ex_missing", "0-0", block_ms=0) == []


def test_a_read_waits_for_the_next_event_and_wakes_when_it_comes(stores: Stores) -> None:
    record = submit(stores)
    after = stores.executions.read_events(record.id, "0-0", block_ms=0)[-1].id
    timer = threading.Timer(0.3, stores.executions.append_output, (record.id, "stdout", "late"))
    started = time.monotonic()
    timer.start()
    events = stores.executions.read_events(record.id, after, block_ms=1900)
    waited = time.monotonic() - started
    timer.join()
    assert [event.data for event in events] == [{"stream": "stdout", "data": "late"}]
    assert 0.2 <= waited < 1.5


def test_waiters_for_the_end_sleep_through_the_runs_events_and_all_wake_at_its_end(
    stores: Stores,
) -> None:
    record = submit(stores)
    executions = stores.executions
    assert executions.wait_ended(record.id, 0.05) is None  # queued: no end yet
    woke: list[tuple[Execution | None, float]] = []
    started = time.monotonic()

    def wait() -> None:
        woke.append((executions.wait_ended(record.id, 3.0), time.monotonic() - started))

    waiters = [threading.Thread(target=wait) for _ in range(2)]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.2)
    executions.claim(record.id, "w")
    executions.append_output(record.id, "stdout", "not the end")
    time.sleep(0.2)
    executions.finish(record.id, RESULT)
    for waiter in waiters:
        waiter.join()
    ended = executions.get(record.id)
    assert ended.state.final
    assert [found for found, _ in woke] == [ended, ended]  # both, not only the first, with it
    assert all(0.35 <= waited < 2.5 for _, waited in woke)
    assert executions.wait_ended(record.id, 3.0) == ended  # a late waiter: at once, and again
    assert executions.wait_ended(record.id, 3.0) == ended
    assert executions.wait_ended("ex_missing", 0.05) is None


def test_a_long_wait_for_events_answers_empty_instead_of_timing_out(stores: Stores) -> None:
    # The Redis client reads with a socket timeout: a wait longer than it must not raise.
    record = submit(stores)
    after = stores.executions.read_events(record.id, "0-0", block_ms=0)[-1].id
    started = time.monotonic()
    assert stores.executions.read_events(record.id, after, block_ms=12_000) == []
    assert 1.5 <= time.monotonic() - started < 5  # one bounded wait; the caller loops


# executions: expiry and stored bytes ------------------------------------------------------------


def test_an_ended_record_and_its_events_expire_after_the_result_ttl(backend: Backend) -> None:
    stores = backend.make(result_ttl_s=1)
    ended, live = submit(stores), submit(stores)
    stores.executions.claim(ended.id, "w")
    stores.executions.cancel(ended.id, "acme")
    assert stores.executions.cancel_requested(ended.id)
    time.sleep(1.3)
    with pytest.raises(NotFound):
        stores.executions.get(ended.id)
    assert stores.executions.read_events(ended.id, "0-0", block_ms=0) == []
    assert not stores.executions.cancel_requested(ended.id)
    assert [item.id for item in stores.executions.newest("acme", 10)] == [live.id]
    assert stores.executions.get(live.id).state == ExecutionState.QUEUED


def test_stored_results_are_bounded_and_freed_when_they_expire(backend: Backend) -> None:
    stores = backend.make(result_ttl_s=1)
    record = submit(stores, max_stored_bytes=1)
    assert stores.executions.stored_bytes("acme") == 0
    stores.executions.claim(record.id, "w")
    stores.executions.finish(record.id, RESULT)
    assert stores.executions.stored_bytes("acme") > len(RESULT.stdout)
    with pytest.raises(QuotaExceeded) as refused:
        submit(stores, max_stored_bytes=1)
    assert "over its 1 bytes" in refused.value.message
    assert refused.value.retry_after_s == 60
    submit(stores, execution("other"), max_stored_bytes=1)  # another tenant's own bound
    time.sleep(1.3)
    submit(stores, max_stored_bytes=1)
    assert stores.executions.stored_bytes("acme") == 0


def test_stored_bytes_count_each_ended_record(stores: Stores) -> None:
    sizes = []
    for stdout in ("a", "a" * 1000):
        record = submit(stores)
        stores.executions.claim(record.id, "w")
        stores.executions.finish(record.id, RESULT.model_copy(update={"stdout": stdout}))
        sizes.append(stores.executions.stored_bytes("acme"))
    assert sizes[1] - sizes[0] > 2000  # the output counts twice: record and event stream
    assert stores.executions.stored_bytes("other") == 0


def test_a_partial_result_counts_toward_stored_bytes(stores: Stores, backend: Backend) -> None:
    record = submit(stores)
    stores.executions.claim(record.id, "w")
    stores.executions.cancel(record.id, "acme")
    before = stores.executions.stored_bytes("acme")
    partial = RESULT.model_copy(update={"status": RunStatus.CANCELLED, "stdout": "x" * 10_000})
    stores.executions.attach_partial_result(record.id, partial)
    assert stores.executions.stored_bytes("acme") >= before + 10_000


def test_a_live_execution_stays_listed_however_old(backend: Backend) -> None:
    stores = backend.make(result_ttl_s=1)
    running = submit(stores)
    stores.executions.claim(running.id, "w")
    time.sleep(1.3)
    newer = submit(stores)
    assert [item.id for item in stores.executions.newest("acme", 10)] == [newer.id, running.id]


def test_newest_skips_expired_records_before_counting(backend: Backend) -> None:
    stores = backend.make(result_ttl_s=1)
    oldest, middle, ended = submit(stores), submit(stores), submit(stores)
    stores.executions.cancel(ended.id, "acme")
    time.sleep(1.3)
    assert [item.id for item in stores.executions.newest("acme", 2)] == [middle.id, oldest.id]


# executions: event-stream slots -----------------------------------------------------------------


def test_event_stream_slots_are_bounded_per_tenant(stores: Stores) -> None:
    executions = stores.executions
    assert executions.open_stream("acme", "a", limit=2, ttl_s=30)
    assert executions.open_stream("acme", "b", limit=2, ttl_s=30)
    assert not executions.open_stream("acme", "c", limit=2, ttl_s=30)
    assert executions.open_stream("other", "c", limit=2, ttl_s=30)
    executions.close_stream("acme", "a")
    assert executions.open_stream("acme", "c", limit=2, ttl_s=30)
    assert not executions.open_stream("acme", "d", limit=2, ttl_s=30)
    executions.close_stream("acme", "never-opened")


def test_a_stream_slot_whose_lease_ended_is_free(stores: Stores) -> None:
    executions = stores.executions
    assert executions.open_stream("acme", "dead", limit=1, ttl_s=0.2)
    assert not executions.open_stream("acme", "b", limit=1, ttl_s=30)
    time.sleep(0.3)
    assert executions.open_stream("acme", "b", limit=1, ttl_s=30)


def test_a_renewed_stream_slot_stays_held(stores: Stores) -> None:
    executions = stores.executions
    assert executions.open_stream("acme", "a", limit=2, ttl_s=0.3)
    executions.renew_stream("acme", "a", ttl_s=30)
    executions.renew_stream("acme", "never-opened", ttl_s=30)  # renews, never opens
    time.sleep(0.4)
    assert executions.open_stream("acme", "b", limit=2, ttl_s=30)
    assert not executions.open_stream("acme", "c", limit=2, ttl_s=30)


def test_a_stream_slot_stays_held_while_it_is_renewed(stores: Stores, backend: Backend) -> None:
    executions = stores.executions
    assert executions.open_stream("acme", "long", limit=1, ttl_s=0.5)
    deadline = time.monotonic() + 2.6
    while time.monotonic() < deadline:
        executions.renew_stream("acme", "long", ttl_s=0.5)
        time.sleep(0.15)
    assert not executions.open_stream("acme", "second", limit=1, ttl_s=0.5)


# sessions ---------------------------------------------------------------------------------------


def test_a_session_is_only_visible_to_its_tenant(stores: Stores) -> None:
    created = session("se_1")
    stores.sessions.create(created, limit=8)
    assert stores.sessions.get("se_1", "acme") == created
    assert stores.sessions.of_tenant("acme") == [created]
    assert stores.sessions.active_ids() == ["se_1"]
    with pytest.raises(NotFound):
        stores.sessions.get("se_1", "other")
    with pytest.raises(NotFound):
        stores.sessions.get("se_missing")
    assert stores.sessions.of_tenant("other") == []


def test_open_sessions_are_bounded_per_tenant_and_an_ended_one_frees_its_slot(
    stores: Stores,
) -> None:
    sessions = stores.sessions
    sessions.create(session("se_1"), limit=2)
    sessions.create(session("se_2"), limit=2)
    with pytest.raises(QuotaExceeded) as refused:
        sessions.create(session("se_3"), limit=2)
    assert "at most 2 sessions open" in refused.value.message
    assert refused.value.retry_after_s == 5
    sessions.create(session("se_other", "other"), limit=2)
    sessions.update("se_1", lambda s: s.model_copy(update={"state": SessionState.DELETED}))
    sessions.create(session("se_3"), limit=2)
    with pytest.raises(QuotaExceeded):
        sessions.create(session("se_4"), limit=2)
    assert sessions.active_ids() == ["se_2", "se_3", "se_other"]
    with pytest.raises(QuotaExceeded):
        sessions.create(session("se_5", "third"), limit=0)


def test_sessions_of_a_tenant_are_newest_first_in_any_state(stores: Stores) -> None:
    for ident in ("se_a", "se_b", "se_c"):
        stores.sessions.create(session(ident), limit=8)
    stores.sessions.update("se_b", lambda s: s.model_copy(update={"state": SessionState.EXPIRED}))
    listed = stores.sessions.of_tenant("acme")
    assert [s.id for s in listed] == ["se_c", "se_b", "se_a"]
    assert [s.state for s in listed] == [
        SessionState.ACTIVE,
        SessionState.EXPIRED,
        SessionState.ACTIVE,
    ]


def test_a_session_update_is_applied_to_the_current_record(stores: Stores) -> None:
    stores.sessions.create(session("se_1"), limit=8)
    threads = [
        threading.Thread(
            target=stores.sessions.update,
            args=("se_1", lambda s: s.model_copy(update={"idle_timeout_s": s.idle_timeout_s + 1})),
        )
        for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stores.sessions.get("se_1").idle_timeout_s == 70
    updated = stores.sessions.update("se_1", lambda s: s.model_copy(update={"container_id": "c1"}))
    assert updated.container_id == "c1"
    assert stores.sessions.get("se_1").container_id == "c1"
    with pytest.raises(NotFound):
        stores.sessions.update("se_missing", lambda s: s)


def test_an_update_from_a_stale_known_record_loses_nobody_elses_change(stores: Stores) -> None:
    sessions = stores.sessions
    sessions.create(session("se_1"), limit=8)
    known = sessions.get("se_1")
    used = utcnow() + timedelta(seconds=5)

    def mark_used(current: Session) -> Session:
        return current.model_copy(update={"last_used_at": used})

    assert sessions.update("se_1", mark_used, known=known).last_used_at == used
    assert sessions.get("se_1").last_used_at == used
    sessions.update("se_1", lambda s: s.model_copy(update={"container_id": "c1"}))
    later = used + timedelta(seconds=5)
    touched = sessions.update(
        "se_1", lambda s: s.model_copy(update={"last_used_at": later}), known=known
    )
    assert (touched.container_id, touched.last_used_at) == ("c1", later)
    assert sessions.get("se_1") == touched
    with pytest.raises(NotFound):
        sessions.update("se_missing", mark_used, known=session("se_missing"))


def test_a_failed_change_writes_nothing(stores: Stores) -> None:
    stores.sessions.create(session("se_1"), limit=8)

    def refuse(_: Session) -> Session:
        raise SessionBusy("no")

    with pytest.raises(SessionBusy):
        stores.sessions.update("se_1", refuse)
    assert stores.sessions.get("se_1").state == SessionState.ACTIVE


def test_an_ended_session_expires_after_the_result_ttl(backend: Backend) -> None:
    stores = backend.make(result_ttl_s=1)
    stores.sessions.create(session("se_1"), limit=8)
    stores.sessions.create(session("se_2"), limit=8)
    stores.sessions.update("se_1", lambda s: s.model_copy(update={"state": SessionState.DELETED}))
    assert stores.sessions.get("se_1").state == SessionState.DELETED
    time.sleep(1.3)
    with pytest.raises(NotFound):
        stores.sessions.get("se_1")
    assert [s.id for s in stores.sessions.of_tenant("acme")] == ["se_2"]
    assert stores.sessions.active_ids() == ["se_2"]


# session operations -----------------------------------------------------------------------------


def test_commands_travel_first_in_first_out_with_their_bytes_intact(stores: Stores) -> None:
    queue = stores.session_ops
    blob = bytes(range(256)) + b"\xff\xfe\x00not utf-8\x80"
    write, start = command(WriteFile(path="a.bin")), command()
    queue.push(write, blob)
    queue.push(start)
    assert queue.take(1) == (write, blob)
    assert queue.take(1) == (start, None)
    started = time.monotonic()
    assert queue.take(0.3) is None
    assert 0.2 <= time.monotonic() - started < 1.5


def test_a_take_wakes_when_a_command_arrives(stores: Stores) -> None:
    pushed = command()
    timer = threading.Timer(0.3, stores.session_ops.push, (pushed,))
    started = time.monotonic()
    timer.start()
    taken = stores.session_ops.take(1.9)
    timer.join()
    assert taken == (pushed, None)
    assert time.monotonic() - started < 1.5


def test_one_command_is_taken_once(stores: Stores) -> None:
    queue = stores.session_ops
    for _ in range(10):
        queue.push(command())
    taken: list[str] = []
    lock = threading.Lock()

    def drain() -> None:
        while (item := queue.take(0.2)) is not None:
            with lock:
                taken.append(item[0].id)

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == len(set(taken)) == 10


def test_a_command_is_claimed_once_and_a_withdrawn_one_never(stores: Stores) -> None:
    queue = stores.session_ops
    assert queue.claim("op_1")
    assert not queue.claim("op_1")
    assert not queue.abandon("op_1")
    assert queue.abandon("op_2")
    assert not queue.claim("op_2")
    assert not queue.abandon("op_2")


def test_only_one_of_a_claimer_and_a_withdrawer_wins(stores: Stores) -> None:
    outcomes: list[tuple[str, bool]] = []
    barrier = threading.Barrier(8)

    def decide(how: str) -> None:
        barrier.wait()
        won = stores.session_ops.claim("op") if how == "claim" else stores.session_ops.abandon("op")
        outcomes.append((how, won))

    threads = [threading.Thread(target=decide, args=(how,)) for how in ["claim", "abandon"] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [won for _, won in outcomes].count(True) == 1


def test_a_reply_reaches_its_waiter_with_its_bytes(stores: Stores) -> None:
    queue = stores.session_ops
    content = b"\x00\xff\xc3(binary"
    queue.reply("op_1", Content(), content)
    listing = Listing(files=(FileEntry(path="a.txt", size_bytes=2),), truncated=True)
    queue.reply("op_2", listing)
    refused = Refused(code="not_found", message="no file", field="path")
    queue.reply("op_3", refused)
    assert queue.wait_reply("op_1", 1) == (Content(), content)
    assert queue.wait_reply("op_2", 1) == (listing, None)
    assert queue.wait_reply("op_3", 1) == (refused, None)
    assert queue.wait_reply("op_1", 0.1) is None  # a reply is read once


def test_a_wait_for_a_reply_wakes_when_it_comes(stores: Stores) -> None:
    timer = threading.Timer(0.3, stores.session_ops.reply, ("op_1", Done()))
    started = time.monotonic()
    timer.start()
    answer = stores.session_ops.wait_reply("op_1", 5)
    timer.join()
    assert answer == (Done(), None)
    assert time.monotonic() - started < 2


def test_a_wait_for_a_reply_that_never_comes_ends_at_its_timeout(
    stores: Stores, backend: Backend
) -> None:
    # On Redis the wait outlasts the client's socket timeout, so it must be a loop of short ones.
    timeout_s = 6.0 if backend.name == "redis" else 0.5
    started = time.monotonic()
    assert stores.session_ops.wait_reply("op_never", timeout_s) is None
    assert timeout_s <= time.monotonic() - started < timeout_s + 2.5
    assert stores.session_ops.wait_reply("op_never", 0) is None


def test_a_command_round_trips_every_operation(stores: Stores) -> None:
    sent = [command(ReadFile(path="x", max_bytes=3)), command(WriteFile(path="y"))]
    for item in sent:
        stores.session_ops.push(item, b"")
    received = [stores.session_ops.take(1) for _ in sent]
    assert received == [(item, b"") for item in sent]


# keys, workers, health --------------------------------------------------------------------------


def test_keys_are_found_by_key_and_can_be_revoked(stores: Stores) -> None:
    key_id, api_key = new_key()
    record = ApiKey(key_id=key_id, tenant="acme", created_at=utcnow(), max_sessions=3)
    stores.keys.add(api_key, record)
    assert stores.keys.get(api_key) == record
    assert stores.keys.get(api_key + "x") is None
    assert [item.key_id for item in stores.keys.all()] == [key_id]
    assert stores.keys.revoke(key_id)
    assert stores.keys.get(api_key) is None
    assert stores.keys.all() == []
    assert not stores.keys.revoke(key_id)


def test_keys_are_listed_oldest_first(stores: Stores) -> None:
    made = []
    for age in (1, 3, 2):
        key_id, api_key = new_key()
        created = utcnow() - timedelta(hours=age)
        stores.keys.add(api_key, ApiKey(key_id=key_id, tenant="acme", created_at=created))
        made.append((created, key_id))
    assert [item.key_id for item in stores.keys.all()] == [ident for _, ident in sorted(made)]


def test_the_first_key_is_made_once(stores: Stores) -> None:
    made = []
    for _ in range(3):
        key_id, api_key = new_key()
        record = ApiKey(key_id=key_id, tenant="default", created_at=utcnow())
        made.append(stores.keys.create_first(api_key, record))
    assert made == [True, False, False]
    assert len(stores.keys.all()) == 1
    assert stores.keys.revoke(stores.keys.all()[0].key_id)
    key_id, api_key = new_key()
    record = ApiKey(key_id=key_id, tenant="default", created_at=utcnow())
    assert not stores.keys.create_first(api_key, record)  # once ever, not once per empty store


def test_no_first_key_once_any_key_exists(stores: Stores) -> None:
    key_id, api_key = new_key()
    stores.keys.add(api_key, ApiKey(key_id=key_id, tenant="acme", created_at=utcnow()))
    first_id, first = new_key()
    assert not stores.keys.create_first(
        first, ApiKey(key_id=first_id, tenant="default", created_at=utcnow())
    )
    assert stores.keys.get(first) is None


def test_a_worker_is_alive_only_while_its_heartbeat_is_fresh(backend: Backend) -> None:
    workers = backend.make(heartbeat_ttl_s=0.5).workers
    assert not workers.any_alive()
    workers.heartbeat("w1")
    assert workers.alive("w1")
    assert not workers.alive("w2")
    assert workers.any_alive()
    time.sleep(0.6)
    assert not workers.alive("w1")
    assert not workers.any_alive()
    workers.heartbeat("w2")
    assert workers.any_alive()
    workers.forget("w2")
    assert not workers.alive("w2")
    assert not workers.any_alive()


def test_images_are_what_the_workers_last_reported(stores: Stores) -> None:
    assert stores.workers.images_present() == {}
    stores.workers.set_images_present({"python": True, "node": False})
    stores.workers.set_images_present({"node": True})
    stores.workers.set_images_present({})
    assert stores.workers.images_present() == {"python": True, "node": True}


def test_a_store_that_keeps_what_it_accepts_says_so(stores: Stores) -> None:
    assert stores.health.ping()
    assert stores.health.persistent()
