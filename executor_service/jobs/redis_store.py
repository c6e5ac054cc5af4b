"""The JobStore on Redis: JSON records, checked transitions (WATCH), streams for events.

Key layout (prefix `as:`):
    ex:<id>              execution record (JSON); expires result_ttl_s after it ends
    ev:<id>              the execution's event stream (XADD MAXLEN ~), expires with the record
    cancel:<id>          set while a cancel waits for the worker to kill the run
    tenant:<t>:ex        sorted set of the tenant's execution ids by creation time
    tenant:<t>:active    set of the tenant's queued or running ids (its quota)
    tenant:<t>:se        set of the tenant's session ids
    queued, running      sets of ids in those states (queue length, the janitor's work list)
    se:<id>, se:<id>:busy, sessions:active
    key:<sha256>, keys   key records by hash; key_id -> hash
    workers              sorted set of worker name -> last heartbeat (epoch seconds)
    images               hash image -> "1"/"0", as the workers last saw the engine
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis

from executor_service.errors import NotFound, Overloaded, QuotaExceeded, SessionBusy
from executor_service.jobs.event import Event, EventKind
from executor_service.jobs.execution import (
    FINAL_STATES,
    TRANSITIONS,
    Execution,
    ExecutionError,
    ExecutionState,
)
from executor_service.jobs.ids import utcnow
from executor_service.jobs.session import Session, SessionState
from executor_service.jobs.tenant import ApiKey, hash_key
from executor_service.sandbox.runner import Stream
from executor_service.sandbox.spec import RunResult
from executor_service.settings import Settings

PREFIX = "as:"
RETRY_AFTER_S = 5
EVENT_KINDS: frozenset[str] = frozenset({"state", "output", "result"})

# Admission in one step: the queue and quota checks and the writes cannot interleave with another
# submitter's, and a session's busy flag is taken only if the execution is accepted.
_CREATE = """
if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[4]) then return 'overloaded' end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 'quota' end
if ARGV[8] == '1' then
  if not redis.call('SET', KEYS[6], ARGV[1], 'NX') then return 'busy' end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[10])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[7], '*', 'kind', 'state', 'data', ARGV[6])
redis.call('EXPIRE', KEYS[5], ARGV[9])
return 'ok'
"""

# The longest a single XREAD may block; see read_events.
MAX_BLOCK_MS = 2000


def _k(*parts: str) -> str:
    return PREFIX + ":".join(parts)


def _state_data(state: ExecutionState) -> str:
    return json.dumps({"state": state.value})


class RedisJobStore:
    """One instance per process; redis-py's pool makes it safe to share between threads."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._settings = settings
        self._create = client.register_script(_CREATE)

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisJobStore:
        client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
        return cls(client, settings)

    def _pipeline(self) -> Any:
        # redis-py's Pipeline is only partly typed (watch has no annotations).
        return self._redis.pipeline()

    @property
    def client(self) -> redis.Redis:
        return self._redis

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    # keys ---------------------------------------------------------------------------------------

    def add_key(self, key: str, record: ApiKey) -> None:
        digest = hash_key(key)
        with self._pipeline() as pipe:
            pipe.set(_k("key", digest), record.model_dump_json())
            pipe.hset(_k("keys"), record.key_id, digest)
            pipe.execute()

    def key_for(self, key: str) -> ApiKey | None:
        raw = self._redis.get(_k("key", hash_key(key)))
        return None if raw is None else ApiKey.model_validate_json(str(raw))

    def list_keys(self) -> list[ApiKey]:
        digests: dict[str, str] = self._redis.hgetall(_k("keys"))  # type: ignore[assignment]
        records = []
        for digest in digests.values():
            raw = self._redis.get(_k("key", digest))
            if raw is not None:
                records.append(ApiKey.model_validate_json(str(raw)))
        return sorted(records, key=lambda record: record.created_at)

    def revoke_key(self, key_id: str) -> bool:
        digest = self._redis.hget(_k("keys"), key_id)
        if digest is None:
            return False
        with self._pipeline() as pipe:
            pipe.delete(_k("key", str(digest)))
            pipe.hdel(_k("keys"), key_id)
            pipe.execute()
        return True

    def create_first_key(self, key: str, record: ApiKey) -> bool:
        """Add `key` only if no key exists yet and no other process is doing the same."""
        if not self._redis.set(_k("bootstrap"), record.key_id, nx=True):
            return False
        if self._redis.hlen(_k("keys")):
            return False
        self.add_key(key, record)
        return True

    # executions ---------------------------------------------------------------------------------

    def create_execution(self, execution: Execution, *, max_active: int, max_queued: int) -> None:
        session_id = execution.request.session_id
        created = execution.created_at.timestamp()
        outcome = self._create(
            keys=[
                _k("ex", execution.id),
                _k("tenant", execution.tenant, "active"),
                _k("queued"),
                _k("tenant", execution.tenant, "ex"),
                _k("ev", execution.id),
                _k("se", session_id or "-", "busy"),
            ],
            args=[
                execution.id,
                execution.model_dump_json(),
                max_active,
                max_queued,
                created,
                _state_data(execution.state),
                self._settings.event_stream_maxlen,
                "1" if session_id else "0",
                self._settings.visibility_timeout_s + self._settings.result_ttl_s,
                created - self._settings.result_ttl_s,
            ],
        )
        if outcome == "overloaded":
            raise Overloaded("the queue is full; retry later", retry_after_s=RETRY_AFTER_S)
        if outcome == "quota":
            raise QuotaExceeded(
                f"at most {max_active} executions may be queued or running for this tenant",
                retry_after_s=RETRY_AFTER_S,
            )
        if outcome == "busy":
            raise SessionBusy(
                "another execution of this session is queued or running", field="session_id"
            )

    def get_execution(self, execution_id: str, tenant: str | None = None) -> Execution:
        raw = self._redis.get(_k("ex", execution_id))
        if raw is None:
            raise NotFound(f"no execution {execution_id!r}")
        execution = Execution.model_validate_json(str(raw))
        if tenant is not None and execution.tenant != tenant:
            raise NotFound(f"no execution {execution_id!r}")
        return execution

    def list_executions(self, tenant: str, limit: int) -> list[Execution]:
        index = _k("tenant", tenant, "ex")
        ids: list[str] = self._redis.zrevrange(index, 0, max(limit - 1, 0))  # type: ignore[assignment]
        if not ids:
            return []
        raws: list[str | None] = self._redis.mget([_k("ex", i) for i in ids])  # type: ignore[assignment]
        gone = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        if gone:
            self._redis.zrem(index, *gone)
        return [Execution.model_validate_json(raw) for raw in raws if raw is not None]

    def claim(self, execution_id: str, worker: str) -> Execution | None:
        """Move queued -> running for exactly one caller; everyone else (a redelivery) gets None."""
        now = utcnow()

        def start(current: Execution) -> Execution:
            return current.model_copy(
                update={
                    "state": ExecutionState.RUNNING,
                    "started_at": now,
                    "worker": worker,
                    "claimed_at": now,
                    "claims": current.claims + 1,
                }
            )

        execution, changed = self._transition(
            execution_id, frozenset({ExecutionState.QUEUED}), ExecutionState.RUNNING, start
        )
        return execution if changed else None

    def finish(self, execution_id: str, result: RunResult) -> tuple[Execution, bool]:
        now = utcnow()
        return self._transition(
            execution_id,
            frozenset({ExecutionState.RUNNING}),
            ExecutionState.FINISHED,
            lambda current: current.model_copy(
                update={"state": ExecutionState.FINISHED, "finished_at": now, "result": result}
            ),
        )

    def fail(
        self,
        execution_id: str,
        error: ExecutionError,
        *,
        only_from: frozenset[ExecutionState] | None = None,
    ) -> tuple[Execution, bool]:
        now = utcnow()
        allowed = only_from or frozenset({ExecutionState.QUEUED, ExecutionState.RUNNING})
        return self._transition(
            execution_id,
            allowed,
            ExecutionState.FAILED,
            lambda current: current.model_copy(
                update={"state": ExecutionState.FAILED, "finished_at": now, "error": error}
            ),
        )

    def cancel(self, execution_id: str, tenant: str) -> tuple[Execution, bool]:
        self.get_execution(execution_id, tenant)
        now = utcnow()
        return self._transition(
            execution_id,
            frozenset({ExecutionState.QUEUED, ExecutionState.RUNNING}),
            ExecutionState.CANCELLED,
            lambda current: current.model_copy(
                update={"state": ExecutionState.CANCELLED, "finished_at": now}
            ),
        )

    def attach_partial_result(self, execution_id: str, result: RunResult) -> None:
        """Keep what a cancelled run produced before it was killed; the state stays cancelled."""
        key = _k("ex", execution_id)
        with self._pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        return
                    current = Execution.model_validate_json(str(raw))
                    if current.state != ExecutionState.CANCELLED or current.result is not None:
                        pipe.unwatch()
                        return
                    pipe.multi()
                    pipe.set(key, current.model_copy(update={"result": result}).model_dump_json())
                    pipe.expire(key, self._settings.result_ttl_s)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def cancel_requested(self, execution_id: str) -> bool:
        return bool(self._redis.exists(_k("cancel", execution_id)))

    def append_output(self, execution_id: str, stream: Stream, text: str) -> None:
        self._xadd(execution_id, "output", json.dumps({"stream": stream, "data": text}))

    def read_events(self, execution_id: str, after: str, block_ms: int) -> list[Event]:
        """Events after `after`, waiting at most block_ms (capped) for the first one.

        The wait is capped well under the client's socket read timeout (redis-py 8 defaults to
        5 s): a longer XREAD BLOCK would surface as a TimeoutError instead of an empty answer.
        Callers loop until their own deadline.
        """
        block = min(block_ms, MAX_BLOCK_MS) if block_ms > 0 else None
        reply: Any = self._redis.xread({_k("ev", execution_id): after}, count=500, block=block)
        events = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                kind = fields.get("kind")
                if kind in EVENT_KINDS:
                    events.append(Event(id=entry_id, kind=kind, data=json.loads(fields["data"])))
        return events

    def queue_length(self) -> int:
        return int(self._redis.scard(_k("queued")))

    def active_count(self, tenant: str) -> int:
        return int(self._redis.scard(_k("tenant", tenant, "active")))

    def running_ids(self) -> list[str]:
        return sorted(self._redis.smembers(_k("running")))  # type: ignore[arg-type]

    def _xadd(self, execution_id: str, kind: EventKind, data: str) -> None:
        self._redis.xadd(
            _k("ev", execution_id),
            {"kind": kind, "data": data},
            maxlen=self._settings.event_stream_maxlen,
            approximate=True,
        )

    def _transition(
        self,
        execution_id: str,
        allowed_from: frozenset[ExecutionState],
        target: ExecutionState,
        change: Callable[[Execution], Execution],
    ) -> tuple[Execution, bool]:
        """Apply `change` if the record is in `allowed_from`; (record, whether it changed)."""
        key = _k("ex", execution_id)
        with self._pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        pipe.unwatch()
                        raise NotFound(f"no execution {execution_id!r}")
                    current = Execution.model_validate_json(str(raw))
                    if (
                        current.state not in allowed_from
                        or target not in TRANSITIONS[current.state]
                    ):
                        pipe.unwatch()
                        return current, False
                    busy_key = None
                    if target in FINAL_STATES and current.request.session_id:
                        busy_key = _k("se", current.request.session_id, "busy")
                        pipe.watch(busy_key)
                        holder = pipe.get(busy_key)
                        if holder != execution_id:
                            busy_key = None
                    updated = change(current)
                    pipe.multi()
                    self._bookkeep(pipe, updated, busy_key)
                    pipe.execute()
                    return updated, True
                except redis.WatchError:
                    continue

    def _bookkeep(self, pipe: Any, updated: Execution, busy_key: str | None) -> None:
        ident = updated.id
        key, events = _k("ex", ident), _k("ev", ident)
        maxlen = self._settings.event_stream_maxlen
        pipe.set(key, updated.model_dump_json())
        pipe.srem(_k("queued"), ident)
        pipe.xadd(
            events,
            {"kind": "state", "data": _state_data(updated.state)},
            maxlen=maxlen,
            approximate=True,
        )
        if updated.state == ExecutionState.RUNNING:
            pipe.sadd(_k("running"), ident)
            return
        pipe.srem(_k("running"), ident)
        pipe.srem(_k("tenant", updated.tenant, "active"), ident)
        if busy_key is not None:
            pipe.delete(busy_key)
        if updated.state == ExecutionState.CANCELLED:
            pipe.set(_k("cancel", ident), "1", ex=self._settings.result_ttl_s)
        pipe.xadd(events, {"kind": "result", "data": "{}"}, maxlen=maxlen, approximate=True)
        pipe.expire(key, self._settings.result_ttl_s)
        pipe.expire(events, self._settings.result_ttl_s)

    # sessions -----------------------------------------------------------------------------------

    def create_session(self, session: Session) -> None:
        with self._pipeline() as pipe:
            pipe.set(_k("se", session.id), session.model_dump_json())
            pipe.sadd(_k("tenant", session.tenant, "se"), session.id)
            pipe.sadd(_k("sessions", "active"), session.id)
            pipe.execute()

    def get_session(self, session_id: str, tenant: str | None = None) -> Session:
        raw = self._redis.get(_k("se", session_id))
        if raw is None:
            raise NotFound(f"no session {session_id!r}")
        session = Session.model_validate_json(str(raw))
        if tenant is not None and session.tenant != tenant:
            raise NotFound(f"no session {session_id!r}")
        return session

    def list_sessions(self, tenant: str) -> list[Session]:
        index = _k("tenant", tenant, "se")
        ids = sorted(str(i) for i in self._redis.smembers(index))
        if not ids:
            return []
        raws: list[str | None] = self._redis.mget([_k("se", i) for i in ids])  # type: ignore[assignment]
        gone = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        if gone:
            self._redis.srem(index, *gone)
        sessions = [Session.model_validate_json(raw) for raw in raws if raw is not None]
        return sorted(sessions, key=lambda session: session.created_at, reverse=True)

    def update_session(self, session_id: str, change: Callable[[Session], Session]) -> Session:
        key = _k("se", session_id)
        with self._pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        pipe.unwatch()
                        raise NotFound(f"no session {session_id!r}")
                    updated = change(Session.model_validate_json(str(raw)))
                    pipe.multi()
                    pipe.set(key, updated.model_dump_json())
                    if updated.state != SessionState.ACTIVE:
                        pipe.srem(_k("sessions", "active"), session_id)
                        pipe.expire(key, self._settings.result_ttl_s)
                    pipe.execute()
                    return updated
                except redis.WatchError:
                    continue

    def active_session_ids(self) -> list[str]:
        return sorted(self._redis.smembers(_k("sessions", "active")))  # type: ignore[arg-type]

    # replies ------------------------------------------------------------------------------------

    def push_reply(self, reply_to: str, payload: str) -> None:
        key = _k("reply", reply_to)
        with self._pipeline() as pipe:
            pipe.rpush(key, payload)
            # Nobody may be waiting any more (the API gave up): do not keep the reply for ever.
            pipe.expire(key, int(self._settings.worker_op_timeout_s) + 60)
            pipe.execute()

    def wait_reply(self, reply_to: str, timeout_s: float) -> str | None:
        popped: Any = self._redis.blpop([_k("reply", reply_to)], timeout=timeout_s)
        return None if popped is None else str(popped[1])

    # workers ------------------------------------------------------------------------------------

    def heartbeat(self, worker: str) -> None:
        now = time.time()
        with self._pipeline() as pipe:
            pipe.zadd(_k("workers"), {worker: now})
            # Forget workers silent for a day so the set stays small.
            pipe.zremrangebyscore(_k("workers"), "-inf", now - 86_400)
            pipe.execute()

    def worker_alive(self, worker: str) -> bool:
        beat = self._redis.zscore(_k("workers"), worker)
        return beat is not None and float(beat) > time.time() - self._settings.heartbeat_ttl_s

    def any_worker_alive(self) -> bool:
        since = time.time() - self._settings.heartbeat_ttl_s
        return int(self._redis.zcount(_k("workers"), since, "+inf")) > 0

    def set_images_present(self, present: Mapping[str, bool]) -> None:
        if present:
            self._redis.hset(
                _k("images"), mapping={name: "1" if ok else "0" for name, ok in present.items()}
            )

    def images_present(self) -> dict[str, bool]:
        raw: dict[str, str] = self._redis.hgetall(_k("images"))  # type: ignore[assignment]
        return {name: value == "1" for name, value in raw.items()}
