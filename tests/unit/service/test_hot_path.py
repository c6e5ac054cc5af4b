"""The service's own cost per run stays small: Redis round trips of a transition, one cancel
watcher per process, an execution's metrics in one write, and API keys reused briefly."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Collection
from functools import partial
from typing import Any

import pytest
import redis

from executor_service.api.key_cache import CachedKeyStore, cached_keys
from executor_service.jobs.dispatch import QUEUE, Dispatcher, broker_task_ids
from executor_service.jobs.execution import ExecutionError, ExecutionState
from executor_service.jobs.ids import utcnow
from executor_service.jobs.memory.base import Shared
from executor_service.jobs.memory.keys import MemoryKeyStore
from executor_service.jobs.metrics import RedisMetrics
from executor_service.jobs.redis_executions import RedisExecutionStore
from executor_service.jobs.store import ExecutionStore
from executor_service.jobs.tenant import ApiKey, new_key
from executor_service.sandbox.spec import RunResult, RunStatus
from executor_service.settings import Settings
from executor_service.worker.run_watch import RunWatch
from tests.unit.service.records import execution

RESULT = RunResult(status=RunStatus.OK, exit_code=0, stdout="1\n", stderr="", wall_time_s=0.1)
KEY = ApiKey(key_id="k1", tenant="acme", created_at=utcnow())


class CountingRedis(redis.Redis):
    """Counts the commands sent one by one (each is a round trip; pipelines are not used here)."""

    trips = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.trips += 1
        return super().execute_command(*args, **options)


def message_record(client: redis.Redis, execution_id: str) -> str | None:
    """The record the queued task message for `execution_id` carries (Celery's body, decoded)."""
    waiting: list[str] = client.lrange(QUEUE, 0, -1)  # type: ignore[assignment]
    for raw in waiting:
        message = json.loads(raw)
        if message["headers"]["id"] == execution_id:
            _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            return kwargs.get("record")  # type: ignore[no-any-return]
    return None


@pytest.fixture
def counted(service_settings: Settings) -> tuple[RedisExecutionStore, CountingRedis]:
    client = CountingRedis.from_url(service_settings.redis_url, decode_responses=True)
    store = RedisExecutionStore(client, service_settings)
    warm = execution()  # loads the scripts, so the counts below are of the hot path
    store.create(warm, key=KEY, max_queued=10)
    store.claim(warm.id, "w")
    return store, client


@pytest.mark.redis
def test_admission_with_its_task_message_is_one_round_trip(
    counted: tuple[RedisExecutionStore, CountingRedis],
) -> None:
    store, client = counted
    record = execution()
    dispatcher = Dispatcher(client)
    client.trips = 0
    stored = store.create(
        record, key=KEY, max_queued=10, message=partial(dispatcher.entry, record.id)
    )
    assert client.trips == 1
    assert broker_task_ids(client) == {record.id}
    # The message carries the record as stored, which lets the claim skip its read.
    carried = message_record(client, record.id)
    assert carried == stored
    client.trips = 0
    assert store.claim(record.id, "w", carried) is not None
    assert client.trips == 1


@pytest.mark.redis
def test_a_run_costs_one_round_trip_to_claim_and_one_to_finish(
    counted: tuple[RedisExecutionStore, CountingRedis],
) -> None:
    store, client = counted
    record = execution(session_id="se_1")
    queued = store.create(record, key=KEY, max_queued=10)  # what the task message carries
    client.trips = 0
    claimed = store.claim(record.id, "w", queued)
    assert claimed is not None
    assert claimed.state == ExecutionState.RUNNING
    assert client.trips == 1
    client.trips = 0
    finished, changed = store.finish(record.id, RESULT, claimed=claimed)
    assert changed
    assert finished.state == ExecutionState.FINISHED
    assert client.trips == 1
    assert store.get(record.id).result == RESULT
    assert not store.session_busy("se_1")


@pytest.mark.redis
def test_a_claim_without_the_record_reads_it_first(
    counted: tuple[RedisExecutionStore, CountingRedis],
) -> None:
    store, client = counted
    record = execution()
    store.create(record, key=KEY, max_queued=10)
    client.trips = 0
    assert store.claim(record.id, "w") is not None  # a message sent again by the reconciler
    assert client.trips == 2


@pytest.mark.redis
def test_a_queued_record_changed_since_its_message_was_sent_is_not_claimed(
    counted: tuple[RedisExecutionStore, CountingRedis],
) -> None:
    store, client = counted
    record = execution()
    queued = store.create(record, key=KEY, max_queued=10)
    store.cancel(record.id, "acme")
    client.trips = 0
    assert store.claim(record.id, "w", queued) is None
    assert client.trips == 1  # the refusal brought the stored record back with it
    assert store.get(record.id).state == ExecutionState.CANCELLED


@pytest.mark.redis
def test_a_claimed_record_changed_since_is_decided_on_what_is_stored(
    counted: tuple[RedisExecutionStore, CountingRedis],
) -> None:
    store, client = counted
    record = execution()
    store.create(record, key=KEY, max_queued=10)
    claimed = store.claim(record.id, "w")
    assert claimed is not None
    store.cancel(record.id, "acme")
    client.trips = 0
    after, changed = store.finish(record.id, RESULT, claimed=claimed)
    assert not changed
    assert after.state == ExecutionState.CANCELLED
    assert client.trips == 1
    error = ExecutionError(code="x", message="y")
    assert not store.fail(record.id, error, claimed=claimed)[1]
    assert store.get(record.id).state == ExecutionState.CANCELLED


class FlagStore:
    """The one ExecutionStore method the watcher uses, counting its calls."""

    def __init__(self) -> None:
        self.flagged: set[str] = set()
        self.calls: list[set[str]] = []

    def cancels_requested(self, execution_ids: Collection[str]) -> set[str]:
        self.calls.append(set(execution_ids))
        return self.flagged & set(execution_ids)


def _watch_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "run-watch"}


def test_one_watcher_checks_every_run_in_one_call_per_tick() -> None:
    # Other tests' worker contexts may have left their watchers behind: count only this one's.
    earlier = _watch_threads()
    store = FlagStore()
    watch = RunWatch(store, poll_s=0.02)  # type: ignore[arg-type]  # a fake with one method
    try:
        time.sleep(0.1)
        assert store.calls == []  # nothing runs: nothing is asked
        with watch.watching("a") as a, watch.watching("b") as b, watch.watching("c") as c:
            time.sleep(0.1)
            assert store.calls
            assert all(call == {"a", "b", "c"} for call in store.calls)
            store.flagged.add("b")
            assert b.wait(1.0)
            assert not a.is_set()
            assert not c.is_set()
        assert len(_watch_threads() - earlier) == 1
        asked = len(store.calls)
        time.sleep(0.1)
        assert len(store.calls) <= asked + 1  # idle again once the runs ended
    finally:
        watch.stop()
    assert not _watch_threads() - earlier


def test_a_run_shorter_than_a_tick_costs_no_check_and_no_tick() -> None:
    store = FlagStore()
    ticks: list[str] = []
    watch = RunWatch(store, poll_s=0.2)  # type: ignore[arg-type]  # a fake with one method
    try:
        for ident in ("a", "b", "c"):
            with watch.watching(ident, lambda ident=ident: ticks.append(ident)):  # type: ignore[misc]
                time.sleep(0.02)
        time.sleep(0.3)
        assert store.calls == []
        assert ticks == []
        with watch.watching("long", lambda: ticks.append("long")):
            time.sleep(0.5)
        assert 1 <= len(ticks) <= 3
        assert set(ticks) == {"long"}
    finally:
        watch.stop()


def test_a_run_that_starts_while_the_watch_lingers_or_sleeps_is_checked_in_time() -> None:
    store = FlagStore()
    watch = RunWatch(store, poll_s=0.1)  # type: ignore[arg-type]  # a fake with one method
    try:
        for idle_s in (0.0, 0.05, 0.5):  # none, within the linger tick, past it (asleep)
            with watch.watching("warm"):
                time.sleep(0.15)  # one check: the thread is in its timed waits
            time.sleep(idle_s)
            store.flagged.add("late")
            with watch.watching("late") as cancel:
                assert cancel.wait(1.0)  # a tick or two; a lost wake-up would never see it
            store.flagged.clear()
    finally:
        watch.stop()


def test_a_failing_tick_does_not_stop_the_watch() -> None:
    store = FlagStore()
    watch = RunWatch(store, poll_s=0.02)  # type: ignore[arg-type]  # a fake with one method

    def broken() -> None:
        raise RuntimeError("a tick that fails")

    try:
        with watch.watching("a", broken), watch.watching("b") as b:
            time.sleep(0.1)
            store.flagged.add("b")
            assert b.wait(1.0)  # still watched after a's ticks failed
    finally:
        watch.stop()


@pytest.mark.redis
def test_output_held_until_the_end_goes_with_the_finish_in_one_round_trip(
    counted: tuple[RedisExecutionStore, CountingRedis],
) -> None:
    store, client = counted
    record = execution()
    queued = store.create(record, key=KEY, max_queued=10)
    claimed = store.claim(record.id, "w", queued)
    assert claimed is not None
    client.trips = 0
    held = [("stdout", "1\n"), ("stderr", "warn\n"), ("stdout", "2\n")]
    _, changed = store.finish(record.id, RESULT, claimed=claimed, output=held)  # type: ignore[arg-type]
    assert changed
    assert client.trips == 1
    events = store.read_events(record.id, "0-0", 0)
    assert [(e.kind, e.data.get("stream"), e.data.get("data")) for e in events] == [
        ("state", None, None),
        ("state", None, None),
        ("output", "stdout", "1\n"),
        ("output", "stderr", "warn\n"),
        ("output", "stdout", "2\n"),
        ("state", None, None),
        ("result", None, None),
    ]
    assert events[-2].data == {"state": "finished"}


def test_the_watcher_sees_a_cancel_of_the_real_store(stores: Any) -> None:
    executions: ExecutionStore = stores.executions
    record = execution()
    executions.create(record, key=KEY, max_queued=10)
    executions.claim(record.id, "w")
    watch = RunWatch(executions, poll_s=0.02)
    try:
        with watch.watching(record.id) as cancel:
            assert not cancel.wait(0.1)
            executions.cancel(record.id, "acme")
            assert cancel.wait(1.0)
    finally:
        watch.stop()


@pytest.mark.redis
def test_an_executions_numbers_are_written_together(redis_client: redis.Redis) -> None:
    metrics = RedisMetrics(redis_client)
    batch = metrics.batch()
    batch.observe("queue_wait_seconds", 0.03)
    batch.observe("run_seconds", 2)
    batch.count_outcome("finished:ok")
    batch.count_egress(False, "host")
    assert metrics.outcomes() == {}  # nothing is written before the flush
    batch.flush()
    batch.flush()  # a second flush writes nothing twice
    metrics.count_outcome("failed")
    assert metrics.outcomes() == {"finished:ok": 1, "failed": 1}
    assert metrics.egress() == {"denied:host": 1}
    found = {h.name: h for h in metrics.histograms()}
    assert found["queue_wait_seconds"].sum == pytest.approx(0.03)
    assert dict(found["queue_wait_seconds"].buckets)["0.05"] == 1
    assert found["run_seconds"].sum == 2.0
    assert dict(found["run_seconds"].buckets)["1"] == 0
    assert dict(found["run_seconds"].buckets)["2.5"] == 1


class CountingKeys(MemoryKeyStore):
    lookups = 0

    def get(self, api_key: str) -> ApiKey | None:
        self.lookups += 1
        return super().get(api_key)


def test_a_key_is_looked_up_once_per_cache_time_and_stops_working_after_it() -> None:
    keys = CountingKeys(Shared())
    key_id, secret = new_key()
    keys.add(secret, ApiKey(key_id=key_id, tenant="acme", created_at=utcnow()))
    cached = cached_keys(keys, 0.2)
    assert cached.get(secret) is not None
    assert cached.get(secret) is not None
    assert keys.lookups == 1
    keys.revoke(key_id)  # revoked elsewhere (another process)
    assert cached.get(secret) is not None  # still inside the cache time
    time.sleep(0.25)
    assert cached.get(secret) is None
    assert cached.get("not-a-key") is None


def test_revoking_through_the_cache_forgets_at_once_and_zero_disables_it() -> None:
    keys = CountingKeys(Shared())
    key_id, secret = new_key()
    keys.add(secret, ApiKey(key_id=key_id, tenant="acme", created_at=utcnow()))
    cached = CachedKeyStore(keys, 60)
    assert cached.get(secret) is not None
    assert cached.revoke(key_id)
    assert cached.get(secret) is None
    assert cached_keys(keys, 0) is keys
