"""RedisJobStore against a real redis-server: admission, claims, transitions, events, keys."""

from __future__ import annotations

import threading

import pytest

from executor_service.errors import NotFound, Overloaded, QuotaExceeded, SessionBusy
from executor_service.jobs.execution import ExecutionError, ExecutionState
from executor_service.jobs.ids import utcnow
from executor_service.jobs.redis_store import RedisJobStore
from executor_service.jobs.tenant import ApiKey, hash_key, new_key
from executor_service.sandbox.spec import RunResult, RunStatus
from tests.unit.service.records import execution

pytestmark = pytest.mark.redis

RESULT = RunResult(status=RunStatus.OK, exit_code=0, stdout="1\n", stderr="", wall_time_s=0.1)


def test_a_record_is_only_visible_to_its_tenant(store: RedisJobStore) -> None:
    record = execution("acme")
    store.create_execution(record, max_active=4, max_queued=10)
    assert store.get_execution(record.id, "acme").id == record.id
    with pytest.raises(NotFound):
        store.get_execution(record.id, "other")
    with pytest.raises(NotFound):
        store.cancel(record.id, "other")
    assert store.list_executions("other", 10) == []


def test_only_one_of_many_concurrent_claimers_wins(store: RedisJobStore) -> None:
    records = [execution() for _ in range(20)]
    for record in records:
        store.create_execution(record, max_active=100, max_queued=100)
    winners: list[tuple[str, str]] = []
    lock = threading.Lock()

    def claim_all(worker: str) -> None:
        for record in records:
            if store.claim(record.id, worker) is not None:
                with lock:
                    winners.append((record.id, worker))

    threads = [threading.Thread(target=claim_all, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ident for ident, _ in winners) == sorted(record.id for record in records)
    for record in records:
        stored = store.get_execution(record.id)
        assert stored.state == ExecutionState.RUNNING
        assert stored.claims == 1
    assert store.queue_length() == 0
    assert sorted(store.running_ids()) == sorted(record.id for record in records)


def test_quota_counts_queued_and_running_and_frees_on_the_end(store: RedisJobStore) -> None:
    first, second = execution(), execution()
    store.create_execution(first, max_active=2, max_queued=100)
    store.create_execution(second, max_active=2, max_queued=100)
    store.claim(first.id, "w")
    with pytest.raises(QuotaExceeded) as refused:
        store.create_execution(execution(), max_active=2, max_queued=100)
    assert refused.value.retry_after_s
    store.create_execution(execution("another-tenant"), max_active=2, max_queued=100)
    store.finish(first.id, RESULT)
    assert store.active_count("acme") == 1
    store.create_execution(execution(), max_active=2, max_queued=100)


def test_a_full_queue_is_refused(store: RedisJobStore) -> None:
    store.create_execution(execution(), max_active=10, max_queued=1)
    with pytest.raises(Overloaded):
        store.create_execution(execution("b"), max_active=10, max_queued=1)
    assert store.queue_length() == 1


def test_a_session_runs_one_execution_at_a_time(store: RedisJobStore) -> None:
    first = execution(session_id="se_1")
    store.create_execution(first, max_active=10, max_queued=10)
    with pytest.raises(SessionBusy):
        store.create_execution(execution(session_id="se_1"), max_active=10, max_queued=10)
    store.create_execution(execution(session_id="se_2"), max_active=10, max_queued=10)
    store.claim(first.id, "w")
    store.fail(first.id, ExecutionError(code="x", message="y"))
    store.create_execution(execution(session_id="se_1"), max_active=10, max_queued=10)


def test_cancel_of_a_queued_execution_stops_its_claim(store: RedisJobStore) -> None:
    record = execution()
    store.create_execution(record, max_active=10, max_queued=10)
    cancelled, changed = store.cancel(record.id, "acme")
    assert changed
    assert cancelled.state == ExecutionState.CANCELLED
    assert store.claim(record.id, "w") is None
    assert store.active_count("acme") == 0


def test_cancel_of_a_running_execution_raises_the_flag_and_wins_over_finish(
    store: RedisJobStore,
) -> None:
    record = execution()
    store.create_execution(record, max_active=10, max_queued=10)
    store.claim(record.id, "w")
    assert not store.cancel_requested(record.id)
    store.cancel(record.id, "acme")
    assert store.cancel_requested(record.id)
    partial = RESULT.model_copy(update={"status": RunStatus.CANCELLED})
    after, changed = store.finish(record.id, partial)
    assert not changed
    assert after.state == ExecutionState.CANCELLED
    store.attach_partial_result(record.id, partial)
    stored = store.get_execution(record.id)
    assert stored.state == ExecutionState.CANCELLED
    assert stored.result == partial
    _, again = store.cancel(record.id, "acme")
    assert not again


def test_events_replay_in_order_for_a_late_reader(store: RedisJobStore) -> None:
    record = execution()
    store.create_execution(record, max_active=10, max_queued=10)
    store.claim(record.id, "w")
    store.append_output(record.id, "stdout", "hello ")
    store.append_output(record.id, "stderr", "oops")
    store.finish(record.id, RESULT)
    events = store.read_events(record.id, "0-0", block_ms=0)
    assert [(event.kind, event.data) for event in events] == [
        ("state", {"state": "queued"}),
        ("state", {"state": "running"}),
        ("output", {"stream": "stdout", "data": "hello "}),
        ("output", {"stream": "stderr", "data": "oops"}),
        ("state", {"state": "finished"}),
        ("result", {}),
    ]
    assert store.read_events(record.id, events[2].id, block_ms=0)[0].data["data"] == "oops"


def test_an_ended_record_expires_after_the_result_ttl(store: RedisJobStore) -> None:
    record = execution()
    store.create_execution(record, max_active=10, max_queued=10)
    assert store.client.ttl(f"as:ex:{record.id}") == -1
    store.claim(record.id, "w")
    store.finish(record.id, RESULT)
    ttl = store.client.ttl(f"as:ex:{record.id}")
    assert 0 < int(ttl) <= 600  # type: ignore[arg-type]


def test_list_is_newest_first_and_bounded(store: RedisJobStore) -> None:
    records = [execution() for _ in range(5)]
    for record in records:
        store.create_execution(record, max_active=10, max_queued=10)
    listed = store.list_executions("acme", 3)
    assert [item.id for item in listed] == [record.id for record in reversed(records)][:3]


def test_keys_are_stored_hashed_and_can_be_revoked(store: RedisJobStore) -> None:
    key_id, key = new_key()
    record = ApiKey(key_id=key_id, tenant="acme", created_at=utcnow())
    store.add_key(key, record)
    assert store.key_for(key) == record
    assert store.key_for(key + "x") is None
    for name in store.client.scan_iter("*"):
        assert key not in str(name)
        value = store.client.dump(name)
        assert value is None or key.encode() not in value
    assert store.client.exists(f"as:key:{hash_key(key)}")
    assert [item.key_id for item in store.list_keys()] == [key_id]
    assert store.revoke_key(key_id)
    assert store.key_for(key) is None
    assert not store.revoke_key(key_id)


def test_the_first_key_is_made_once(store: RedisJobStore) -> None:
    made = []
    for _ in range(3):
        key_id, key = new_key()
        made.append(
            store.create_first_key(
                key, ApiKey(key_id=key_id, tenant="default", created_at=utcnow())
            )
        )
    assert made == [True, False, False]
    assert len(store.list_keys()) == 1


def test_a_worker_is_alive_only_while_its_heartbeat_is_fresh(store: RedisJobStore) -> None:
    assert not store.any_worker_alive()
    store.heartbeat("w1")
    assert store.worker_alive("w1")
    assert store.any_worker_alive()
    # A beat older than the TTL: as if the worker died a while ago.
    store.client.zadd("as:workers", {"w1": 1.0})
    assert not store.worker_alive("w1")
    assert not store.any_worker_alive()


def test_session_replies_travel_through_redis(store: RedisJobStore) -> None:
    store.push_reply("r1", '{"ok": {}}')
    assert store.wait_reply("r1", 1) == '{"ok": {}}'
    assert store.wait_reply("r2", 0.1) is None


def test_a_long_wait_for_events_answers_empty_instead_of_timing_out(store: RedisJobStore) -> None:
    # redis-py 8 reads with a 5 s socket timeout: asking to block longer must not raise.
    record = execution()
    store.create_execution(record, max_active=10, max_queued=10)
    after = store.read_events(record.id, "0-0", block_ms=0)[-1].id
    assert store.read_events(record.id, after, block_ms=6000) == []
