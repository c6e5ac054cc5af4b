"""SessionStore on Redis.

Key layout (prefix `as:`):
    se:<id>               session record (JSON); expires result_ttl_s after it ends
    tenant:<t>:se         set of the tenant's session ids (any state)
    tenant:<t>:se_open    set of the tenant's active session ids (its bound)
    sessions:active       set of every active session id (the janitor's work list)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import redis

from executor_service.errors import NotFound
from executor_service.jobs.redis_base import key, watched
from executor_service.jobs.session import Session, SessionState
from executor_service.jobs.store_rules import over_sessions
from executor_service.settings import Settings

_CREATE = """
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return 1
"""

# An update of an active session that stays active, in one round trip, if the record is still
# the one the caller read (its SHA-1); else the caller reads and decides again.
_REPLACE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return -1 end
if redis.sha1hex(raw) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
"""

_ACTIVE = key("sessions", "active")


class RedisSessionStore:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._settings = settings
        self._create = client.register_script(_CREATE)
        self._replace = client.register_script(_REPLACE)

    def create(self, session: Session, *, limit: int) -> None:
        created = self._create(
            keys=[
                key("se", session.id),
                key("tenant", session.tenant, "se_open"),
                key("tenant", session.tenant, "se"),
                _ACTIVE,
            ],
            args=[session.id, session.model_dump_json(), limit],
        )
        if not created:
            raise over_sessions(limit)

    def get(self, session_id: str, tenant: str | None = None) -> Session:
        raw = self._redis.get(key("se", session_id))
        if raw is None:
            raise NotFound(f"no session {session_id!r}")
        session = Session.model_validate_json(str(raw))
        if tenant is not None and session.tenant != tenant:
            raise NotFound(f"no session {session_id!r}")
        return session

    def of_tenant(self, tenant: str) -> list[Session]:
        index = key("tenant", tenant, "se")
        ids = sorted(str(i) for i in self._redis.smembers(index))
        if not ids:
            return []
        raws: list[str | None] = self._redis.mget([key("se", i) for i in ids])  # type: ignore[assignment]
        gone = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        if gone:
            self._redis.srem(index, *gone)
        sessions = [Session.model_validate_json(raw) for raw in raws if raw is not None]
        return sorted(sessions, key=lambda session: session.created_at, reverse=True)

    def update(
        self, session_id: str, change: Callable[[Session], Session], known: Session | None = None
    ) -> Session:
        """With `known` (an active record) and a change that keeps it active: one round trip
        (a run's end marks its session used), instead of WATCH, GET, MULTI, SET, EXEC."""
        record_key = key("se", session_id)
        if known is not None and known.state == SessionState.ACTIVE:
            updated = change(known)
            if updated.state == SessionState.ACTIVE:
                expected = hashlib.sha1(known.model_dump_json().encode(), usedforsecurity=False)
                replaced = self._replace(
                    keys=[record_key], args=[expected.hexdigest(), updated.model_dump_json()]
                )
                if replaced == -1:
                    raise NotFound(f"no session {session_id!r}")
                if replaced == 1:
                    return updated

        def read(pipe: Any) -> Session:
            raw = pipe.get(record_key)
            if raw is None:
                raise NotFound(f"no session {session_id!r}")
            return change(Session.model_validate_json(str(raw)))

        def write(pipe: Any, updated: Session) -> None:
            pipe.set(record_key, updated.model_dump_json())
            if updated.state != SessionState.ACTIVE:
                pipe.srem(_ACTIVE, session_id)
                pipe.srem(key("tenant", updated.tenant, "se_open"), session_id)
                pipe.expire(record_key, self._settings.result_ttl_s)

        return watched(self._redis, [record_key], read, write)

    def active_ids(self) -> list[str]:
        return sorted(self._redis.smembers(_ACTIVE))  # type: ignore[arg-type]
