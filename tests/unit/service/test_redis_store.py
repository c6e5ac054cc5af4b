"""What only the Redis stores promise: keys kept hashed, expiry set on Redis's own keys, health.

Everything the stores do is in test_store_behaviour.py, run against Redis and memory alike.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from executor_service.jobs.ids import new_id, utcnow
from executor_service.jobs.redis_workers import RedisHealth
from executor_service.jobs.session import Session, SessionState
from executor_service.jobs.session_commands import SessionCommand, StartSandbox
from executor_service.jobs.store import Stores
from executor_service.jobs.tenant import ApiKey, hash_key, new_key
from executor_service.sandbox.spec import RunResult, RunStatus
from tests.unit.service.records import execution, session
from tests.unit.service.redis_server import free_port

pytestmark = pytest.mark.redis

RESULT = RunResult(status=RunStatus.OK, exit_code=0, stdout="1\n", stderr="", wall_time_s=0.1)
KEY = ApiKey(key_id="k1", tenant="acme", created_at=utcnow())


def ttl(client: redis.Redis, name: str) -> int:
    return int(client.ttl(name))


def test_keys_are_stored_hashed(stores: Stores, redis_client: redis.Redis) -> None:
    key_id, key = new_key()
    stores.keys.add(key, ApiKey(key_id=key_id, tenant="acme", created_at=utcnow()))
    names = list(redis_client.scan_iter("*"))
    assert names
    for name in names:
        assert key not in str(name)
        value = redis_client.dump(name)
        assert value is None or key.encode() not in value
    assert redis_client.exists(f"as:key:{hash_key(key)}")


def test_an_execution_expires_only_once_it_ended(stores: Stores, redis_client: redis.Redis) -> None:
    record = execution()
    stores.executions.create(record, key=KEY, max_queued=10)
    assert ttl(redis_client, f"as:ex:{record.id}") == -1
    # Events outlive the longest a record can stay queued and run, then its result's life.
    assert 3600 + 3600 < ttl(redis_client, f"as:ev:{record.id}") <= 3600 + 3600 + 600
    stores.executions.claim(record.id, "w")
    assert ttl(redis_client, f"as:ex:{record.id}") == -1
    stores.executions.finish(record.id, RESULT)
    assert 0 < ttl(redis_client, f"as:ex:{record.id}") <= 600
    assert 0 < ttl(redis_client, f"as:ev:{record.id}") <= 600


def test_a_session_expires_only_once_it_ended(stores: Stores, redis_client: redis.Redis) -> None:
    stores.sessions.create(session("se_1"), limit=8)
    assert ttl(redis_client, "as:se:se_1") == -1
    stores.sessions.update("se_1", lambda s: s.model_copy(update={"state": SessionState.EXPIRED}))
    assert 0 < ttl(redis_client, "as:se:se_1") <= 600


def test_marking_a_known_session_used_is_one_round_trip(
    stores: Stores, redis_client: redis.Redis
) -> None:
    stores.sessions.create(session("se_1"), limit=8)
    known = stores.sessions.get("se_1")

    def calls(command: str) -> int:
        stats: dict[str, Any] = redis_client.info("commandstats")
        return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))

    def touch(known: Session) -> Session:
        used = utcnow()
        return stores.sessions.update(
            "se_1", lambda s: s.model_copy(update={"last_used_at": used}), known=known
        )

    known = touch(known)  # the first call also loads the script into Redis
    # (A script's own redis.call()s count too, so its GET and SET are not told apart here.)
    before = {command: calls(command) for command in ("watch", "exec", "evalsha")}
    touch(known)
    after = {command: calls(command) for command in before}
    assert after["evalsha"] == before["evalsha"] + 1
    assert (after["watch"], after["exec"]) == (before["watch"], before["exec"])


def test_session_operation_leftovers_expire(stores: Stores, redis_client: redis.Redis) -> None:
    command = SessionCommand(
        id=new_id("op"), session_id="se_1", claim_by=time.time() + 10, operation=StartSandbox()
    )
    stores.session_ops.push(command, b"bytes")
    assert 0 < ttl(redis_client, f"as:sessionop:{command.id}:blob") <= 600
    assert stores.session_ops.claim(command.id)
    assert 0 < ttl(redis_client, f"as:sessionop:{command.id}:fate") <= 600


def test_persistence_needs_the_append_only_file_and_no_eviction(
    stores: Stores, redis_client: redis.Redis
) -> None:
    assert stores.health.persistent()
    try:
        redis_client.config_set("appendonly", "no")
        assert not stores.health.persistent()
        redis_client.config_set("appendonly", "yes")
        redis_client.config_set("maxmemory-policy", "allkeys-lru")
        assert not stores.health.persistent()
        redis_client.config_set("maxmemory-policy", "volatile-lru")
        assert stores.health.persistent()
    finally:
        redis_client.config_set("appendonly", "yes")
        redis_client.config_set("maxmemory-policy", "noeviction")
        # Turning the file on rewrites it in the background; a server stopped before that ends
        # does not stop in time for the fixture.
        for _ in range(200):
            info: dict[str, Any] = redis_client.info("persistence")
            if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
                break
            time.sleep(0.05)


def test_a_server_that_does_not_answer_is_unhealthy() -> None:
    nowhere = redis.Redis(port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    health = RedisHealth(nowhere)
    assert not health.ping()
    assert not health.persistent()
