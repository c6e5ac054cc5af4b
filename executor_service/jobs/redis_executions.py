"""ExecutionStore on Redis: JSON records, checked transitions, streams for events, tenant bounds.

Key layout (prefix `as:`):
    ex:<id>                  execution record (JSON); expires result_ttl_s after it ends
    ev:<id>                  its event stream (XADD MAXLEN ~), expires with the record
    cancel:<id>              set while a cancel waits for the worker to kill the run
    queued                   sorted set id -> creation time (the reconciler's work list)
    running                  sorted set id -> lease end (the janitor's work list)
    tenant:<t>:ex            sorted set of the tenant's ids by creation time
    tenant:<t>:active        set of the tenant's queued or running ids (its concurrency)
    tenant:<t>:stored        sorted set id -> expiry of ended records, with
    tenant:<t>:sizes         hash id -> bytes, and tenant:<t>:stored_bytes their sum
    tenant:<t>:streams       sorted set stream token -> lease end (open SSE streams)
    se:<id>:busy             the session's running execution
    done:<id>                a list of one element once the execution ended, expiring with the
                             record: waiters block on it (BLMOVE onto itself, so each of them
                             wakes and it stays) instead of reading every event the run writes
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import redis

from executor_service.egress.audit import EgressRecord
from executor_service.errors import NotFound
from executor_service.jobs.dispatch import QueueEntry
from executor_service.jobs.event import Event, EventKind, OutputChunk, output_data, state_data
from executor_service.jobs.execution import (
    FINAL_STATES,
    Execution,
    ExecutionError,
    ExecutionState,
    Move,
    cancel_move,
    claim_move,
    fail_move,
    finish_move,
)
from executor_service.jobs.ids import utcnow
from executor_service.jobs.redis_base import Abort, key, watched
from executor_service.jobs.store_rules import (
    MAX_BLOCK_S,
    over_concurrency,
    over_stored_bytes,
    queue_full,
    session_busy,
    stored_size,
)
from executor_service.jobs.tenant import ApiKey
from executor_service.sandbox.runner import Stream
from executor_service.sandbox.spec import MAX_WALL_TIME_S, RunResult
from executor_service.settings import Settings

EVENT_KINDS: frozenset[str] = frozenset({"state", "output", "egress", "result"})
MAX_LEASE_S = 2 * MAX_WALL_TIME_S  # above any wall time + lease margin a policy can give

# Admission in one step: queue, quota and stored-bytes checks and the writes cannot interleave
# with another submitter's, and a session's busy flag is taken only if the execution is accepted.
# Ended records that expired are first taken off the tenant's stored bytes (a bounded batch).
# The task message, when the caller gives one (KEYS[10], ARGV[13]), is pushed with the record.
_CREATE = """
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[4]) then return 'overloaded' end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 'quota' end
local gone = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', ARGV[12], 'LIMIT', 0, 500)
for _, id in ipairs(gone) do
  local size = redis.call('HGET', KEYS[8], id)
  if size then redis.call('DECRBY', KEYS[9], size) end
  redis.call('HDEL', KEYS[8], id)
  redis.call('ZREM', KEYS[7], id)
end
if tonumber(redis.call('GET', KEYS[9]) or '0') >= tonumber(ARGV[11]) then return 'stored' end
if ARGV[8] == '1' then
  if not redis.call('SET', KEYS[6], ARGV[1], 'NX') then return 'busy' end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[10])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[7], '*', 'kind', 'state', 'data', ARGV[6])
redis.call('EXPIRE', KEYS[5], ARGV[9])
if KEYS[10] then redis.call('LPUSH', KEYS[10], ARGV[13]) end
return 'ok'
"""

# A checked transition in one round trip: the caller read (or wrote) the record whose SHA-1 it
# sends and computed the move from it; if the record is still that one, the new record and all
# its bookkeeping are written, else the current record comes back for the caller to decide
# again. Comparing the whole record (not just its state) is what WATCH gave: no write is lost.
# Output the worker held back (ARGV[13] on) goes on the event stream just before the new state.
_TRANSITION = """
local raw = redis.call('GET', KEYS[1])
if not raw then return {'missing'} end
if redis.sha1hex(raw) ~= ARGV[1] then return {'changed', raw} end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[3])
for i = 13, #ARGV do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'kind', 'output', 'data', ARGV[i])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'kind', 'state', 'data', ARGV[4])
if ARGV[6] == 'running' then
  redis.call('ZADD', KEYS[4], ARGV[7], ARGV[3])
  return {'ok'}
end
redis.call('ZREM', KEYS[4], ARGV[3])
redis.call('SREM', KEYS[5], ARGV[3])
if ARGV[12] == '1' and redis.call('GET', KEYS[6]) == ARGV[3] then redis.call('DEL', KEYS[6]) end
if ARGV[9] == '1' then redis.call('SET', KEYS[7], '1', 'EX', ARGV[8]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'kind', 'result', 'data', '{}')
redis.call('RPUSH', KEYS[11], '1')
redis.call('EXPIRE', KEYS[11], ARGV[8])
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('EXPIRE', KEYS[2], ARGV[8])
redis.call('ZADD', KEYS[8], ARGV[11], ARGV[3])
redis.call('HSET', KEYS[9], ARGV[3], ARGV[10])
redis.call('INCRBY', KEYS[10], ARGV[10])
return {'ok'}
"""

_OPEN_STREAM = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisExecutionStore:
    """One instance per process; redis-py's pool makes it safe to share between threads."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._settings = settings
        self._create = client.register_script(_CREATE)
        self._apply = client.register_script(_TRANSITION)
        self._open_stream = client.register_script(_OPEN_STREAM)

    # admission and reads --------------------------------------------------------------------

    def create(
        self,
        execution: Execution,
        *,
        key: ApiKey,
        max_queued: int,
        message: Callable[[str], QueueEntry] | None = None,
    ) -> str:
        tenant = execution.tenant
        as_json = execution.model_dump_json()
        session_id = execution.request.session_id
        created = execution.created_at.timestamp()
        ttl = self._settings.result_ttl_s
        keys = [
            _ex(execution.id),
            _tenant(tenant, "active"),
            _QUEUED,
            _tenant(tenant, "ex"),
            _ev(execution.id),
            _busy(session_id or "-"),
            _tenant(tenant, "stored"),
            _tenant(tenant, "sizes"),
            _tenant(tenant, "stored_bytes"),
        ]
        args: list[str | int | float] = [
            execution.id,
            as_json,
            key.max_concurrency,
            max_queued,
            created,
            state_data(execution.state),
            self._settings.event_stream_maxlen,
            "1" if session_id else "0",
            self._settings.max_queue_age_s + int(execution.lease_s) + ttl,
            # Index entries older than any record can live (queued, running, then kept).
            created - (self._settings.max_queue_age_s + MAX_LEASE_S + ttl),
            key.max_stored_bytes,
            time.time(),
        ]
        if message is not None:
            entry = message(as_json)
            keys.append(entry.queue)
            args.append(entry.message)
        outcome = self._create(keys=keys, args=args)
        refusal = {
            "overloaded": queue_full,
            "quota": lambda: over_concurrency(key),
            "stored": lambda: over_stored_bytes(key, ttl),
            "busy": session_busy,
        }.get(str(outcome))
        if refusal is not None:
            raise refusal()
        return as_json

    def get(self, execution_id: str, tenant: str | None = None) -> Execution:
        raw = self._redis.get(_ex(execution_id))
        if raw is None:
            raise NotFound(f"no execution {execution_id!r}")
        execution = Execution.model_validate_json(str(raw))
        if tenant is not None and execution.tenant != tenant:
            raise NotFound(f"no execution {execution_id!r}")
        return execution

    def newest(self, tenant: str, limit: int) -> list[Execution]:
        """Up to `limit` live records, newest first; index entries of expired ones are dropped."""
        index = _tenant(tenant, "ex")
        found: list[Execution] = []
        start = 0
        while len(found) < limit:
            want = limit - len(found)
            ids: list[str] = self._redis.zrevrange(index, start, start + want - 1)  # type: ignore[assignment]
            if not ids:
                break
            raws: list[str | None] = self._redis.mget([_ex(i) for i in ids])  # type: ignore[assignment]
            gone = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
            if gone:
                self._redis.zrem(index, *gone)
            found.extend(Execution.model_validate_json(raw) for raw in raws if raw is not None)
            start += len(ids) - len(gone)
        return found

    # transitions ----------------------------------------------------------------------------

    def claim(self, execution_id: str, worker: str, queued: str | None = None) -> Execution | None:
        move = claim_move(worker, utcnow())
        execution, changed = self._transition(execution_id, move, raw=queued)
        return execution if changed else None

    def finish(
        self,
        execution_id: str,
        result: RunResult,
        *,
        claimed: Execution | None = None,
        output: Sequence[OutputChunk] = (),
    ) -> tuple[Execution, bool]:
        move = finish_move(result, utcnow())
        return self._transition(execution_id, move, claimed, output=output)

    def fail(
        self,
        execution_id: str,
        error: ExecutionError,
        *,
        only_from: frozenset[ExecutionState] | None = None,
        claimed: Execution | None = None,
    ) -> tuple[Execution, bool]:
        return self._transition(execution_id, fail_move(error, utcnow(), only_from), claimed)

    def cancel(self, execution_id: str, tenant: str) -> tuple[Execution, bool]:
        self.get(execution_id, tenant)
        return self._transition(execution_id, cancel_move(utcnow()))

    def attach_partial_result(self, execution_id: str, result: RunResult) -> None:
        """Keep what a cancelled run produced before it was killed; the state stays cancelled."""
        record_key = _ex(execution_id)

        def read(pipe: Any) -> tuple[Execution, int]:
            raw = pipe.get(record_key)
            if raw is None:
                raise Abort(None)
            current = Execution.model_validate_json(str(raw))
            if current.state != ExecutionState.CANCELLED or current.result is not None:
                raise Abort(None)
            updated = current.model_copy(update={"result": result})
            return updated, stored_size(updated) - stored_size(current)

        def write(pipe: Any, value: tuple[Execution, int]) -> None:
            updated, grown = value
            # The record keeps its expiry, which its stored-bytes entry shares.
            pipe.set(record_key, updated.model_dump_json(), keepttl=True)
            pipe.hincrby(_tenant(updated.tenant, "sizes"), updated.id, grown)
            pipe.incrby(_tenant(updated.tenant, "stored_bytes"), grown)

        watched(self._redis, [record_key], read, write)

    def cancel_requested(self, execution_id: str) -> bool:
        return bool(self._redis.exists(key("cancel", execution_id)))

    def cancels_requested(self, execution_ids: Collection[str]) -> set[str]:
        ids = list(execution_ids)
        if not ids:
            return set()
        flags: list[str | None] = self._redis.mget([key("cancel", i) for i in ids])  # type: ignore[assignment]
        return {i for i, flag in zip(ids, flags, strict=True) if flag is not None}

    def session_busy(self, session_id: str) -> bool:
        return bool(self._redis.exists(_busy(session_id)))

    def _transition(
        self,
        execution_id: str,
        move: Move,
        known: Execution | None = None,
        *,
        raw: str | None = None,
        output: Sequence[OutputChunk] = (),
    ) -> tuple[Execution, bool]:
        """Apply `move` if the record is in a state it may leave; (record, whether it moved).

        `known` is the record as this caller last wrote it, or `raw` its JSON as stored: while
        nobody else changed it, the move costs one round trip; otherwise (or without either)
        the record is read first.
        """
        if known is not None:
            raw = known.model_dump_json()
        current = known
        while True:
            if raw is None:
                raw = self._redis.get(_ex(execution_id))  # type: ignore[assignment]
                if raw is None:
                    raise NotFound(f"no execution {execution_id!r}")
            if current is None:
                current = Execution.model_validate_json(raw)
            if not move.applies_to(current.state):
                return current, False
            updated = move.change(current)
            args = self._args_of(raw, updated)
            args.extend(output_data(stream, text) for stream, text in output)
            reply: list[str] = self._apply(keys=self._keys_of(updated), args=args)
            if reply[0] == "ok":
                return updated, True
            if reply[0] == "missing":
                raise NotFound(f"no execution {execution_id!r}")
            raw, current = reply[1], None  # another writer came first: decide again on that

    def _keys_of(self, updated: Execution) -> list[str]:
        ident, tenant = updated.id, updated.tenant
        return [
            _ex(ident),
            _ev(ident),
            _QUEUED,
            _RUNNING,
            _tenant(tenant, "active"),
            _busy(updated.request.session_id or "-"),
            key("cancel", ident),
            _tenant(tenant, "stored"),
            _tenant(tenant, "sizes"),
            _tenant(tenant, "stored_bytes"),
            _done(ident),
        ]

    def _args_of(self, expected_raw: str, updated: Execution) -> list[str | int | float]:
        ttl = self._settings.result_ttl_s
        running = updated.state == ExecutionState.RUNNING
        lease_end = updated.lease_expires_at.timestamp() if updated.lease_expires_at else 0
        as_json = updated.model_dump_json()
        return [
            hashlib.sha1(expected_raw.encode(), usedforsecurity=False).hexdigest(),
            as_json,
            updated.id,
            state_data(updated.state),
            self._settings.event_stream_maxlen,
            "running" if running else "final",
            lease_end,
            ttl,
            "1" if updated.state == ExecutionState.CANCELLED else "0",
            0 if running else stored_size(updated, as_json),
            time.time() + ttl,
            "1" if updated.state in FINAL_STATES and updated.request.session_id else "0",
        ]

    # events ---------------------------------------------------------------------------------

    def append_output(self, execution_id: str, stream: Stream, text: str) -> None:
        self._xadd(execution_id, "output", output_data(stream, text))

    def append_egress(self, execution_id: str, record: EgressRecord) -> None:
        self._xadd(execution_id, "egress", record.model_dump_json())

    def read_events(self, execution_id: str, after: str, block_ms: int) -> list[Event]:
        """Events after `after`, waiting at most block_ms (capped at MAX_BLOCK_S) for the first.

        Callers loop until their own deadline.
        """
        block = min(block_ms, int(MAX_BLOCK_S * 1000)) if block_ms > 0 else None
        reply: Any = self._redis.xread({_ev(execution_id): after}, count=500, block=block)
        events = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                kind = fields.get("kind")
                if kind in EVENT_KINDS:
                    events.append(Event(id=entry_id, kind=kind, data=json.loads(fields["data"])))
        return events

    def wait_ended(self, execution_id: str, timeout_s: float) -> Execution | None:
        done = _done(execution_id)
        timeout = min(max(timeout_s, 0.01), MAX_BLOCK_S)
        # One round trip: Redis answers a connection's commands in order, so the GET sent behind
        # the blocking move waits for it (outside MULTI, where a blocking command would not).
        pipe = self._redis.pipeline(transaction=False)
        # Redis takes a fractional timeout; redis-py's annotation says int.
        pipe.blmove(done, done, timeout, "RIGHT", "LEFT")  # type: ignore[arg-type]
        pipe.get(_ex(execution_id))
        moved, raw = pipe.execute()
        if moved is None or raw is None:
            return None
        return Execution.model_validate_json(raw)

    def _xadd(self, execution_id: str, kind: EventKind, data: str) -> None:
        self._redis.xadd(
            _ev(execution_id),
            {"kind": kind, "data": data},
            maxlen=self._settings.event_stream_maxlen,
            approximate=True,
        )

    # counts and work lists ------------------------------------------------------------------

    def queue_length(self) -> int:
        return int(self._redis.zcard(_QUEUED))

    def active_count(self, tenant: str) -> int:
        return int(self._redis.scard(_tenant(tenant, "active")))

    def stored_bytes(self, tenant: str) -> int:
        return int(self._redis.get(_tenant(tenant, "stored_bytes")) or 0)

    def running_ids(self) -> list[str]:
        return sorted(self._redis.zrange(_RUNNING, 0, -1))  # type: ignore[arg-type]

    def expired_leases(self, now: float) -> list[str]:
        return list(self._redis.zrangebyscore(_RUNNING, "-inf", now))  # type: ignore[arg-type]

    def queued_before(self, before: float) -> list[str]:
        return list(self._redis.zrangebyscore(_QUEUED, "-inf", before))  # type: ignore[arg-type]

    # event-stream slots ---------------------------------------------------------------------

    def open_stream(self, tenant: str, token: str, *, limit: int, ttl_s: float) -> bool:
        now = time.time()
        opened = self._open_stream(
            keys=[_tenant(tenant, "streams")],
            args=[now, limit, now + ttl_s, token, int(ttl_s * 2) + 1],
        )
        return bool(opened)

    def renew_stream(self, tenant: str, token: str, *, ttl_s: float) -> None:
        slots = _tenant(tenant, "streams")
        pipe: Any = self._redis.pipeline()
        pipe.zadd(slots, {token: time.time() + ttl_s}, xx=True)
        pipe.expire(slots, int(ttl_s * 2) + 1)
        pipe.execute()

    def close_stream(self, tenant: str, token: str) -> None:
        self._redis.zrem(_tenant(tenant, "streams"), token)


_QUEUED = key("queued")
_RUNNING = key("running")


def _ex(execution_id: str) -> str:
    return key("ex", execution_id)


def _ev(execution_id: str) -> str:
    return key("ev", execution_id)


def _done(execution_id: str) -> str:
    return key("done", execution_id)


def _busy(session_id: str) -> str:
    return key("se", session_id, "busy")


def _tenant(tenant: str, what: str) -> str:
    return key("tenant", tenant, what)
