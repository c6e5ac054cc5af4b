"""ExecutionStore in memory: checked transitions, event lists with stream ids, tenant bounds.

It keeps the Redis store's semantics, checks and messages, with three deliberate differences
where that store departs from its own contract (the shared behaviour suite marks each):
a renewed event-stream slot is held for as long as it is renewed; `newest` lists every live
record, however long ago it was created, and skips expired ones before counting to `limit`; a
partial result attached to a cancelled record counts toward the tenant's stored bytes.
"""

from __future__ import annotations

import bisect
import json
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence

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
from executor_service.jobs.memory.base import Shared, alive, wire
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
from executor_service.sandbox.spec import RunResult
from executor_service.settings import Settings

READ_COUNT = 500  # events one read returns at most, as XREAD COUNT in Redis
StreamId = tuple[int, int]  # (milliseconds, sequence): ordered as Redis orders entry ids


def parse_stream_id(text: str) -> StreamId:
    """An id "<ms>-<seq>", or "<ms>" meaning "<ms>-0"; anything else is refused, as by Redis."""
    ms, dash, seq = text.partition("-")
    if not ms.isdigit() or (dash and not seq.isdigit()):
        raise ValueError(f"invalid stream id {text!r}")
    return int(ms), int(seq or 0)


class _Events:
    """One execution's stream: entries in id order, capped at `maxlen`, with its own expiry."""

    def __init__(self, expires_at: float | None = None) -> None:
        self.entries: list[tuple[StreamId, EventKind, str]] = []
        self.expires_at = expires_at

    def add(self, kind: EventKind, data: str, maxlen: int) -> None:
        last = self.entries[-1][0] if self.entries else (0, 0)
        ms = int(time.time() * 1000)
        ident = (ms, 0) if ms > last[0] else (last[0], last[1] + 1)
        self.entries.append((ident, kind, data))
        if len(self.entries) > maxlen:
            del self.entries[: len(self.entries) - maxlen]

    def after(self, floor: StreamId) -> list[Event]:
        start = bisect.bisect_right(self.entries, floor, key=lambda entry: entry[0])
        return [
            Event(id=f"{ms}-{seq}", kind=kind, data=json.loads(data))
            for (ms, seq), kind, data in self.entries[start : start + READ_COUNT]
        ]


class MemoryExecutionStore:
    def __init__(self, shared: Shared, settings: Settings) -> None:
        self._shared = shared
        self._settings = settings
        self._records: dict[str, Execution] = {}
        self._ends: dict[str, float] = {}  # ended records: when they go
        self._events: dict[str, _Events] = {}
        self._cancels: dict[str, float] = {}  # cancel flag -> when it goes
        self._queued: dict[str, float] = {}  # id -> creation (epoch seconds)
        self._running: dict[str, float] = {}  # id -> lease end
        self._of_tenant: dict[str, set[str]] = defaultdict(set)
        self._active: dict[str, set[str]] = defaultdict(set)  # queued or running
        self._stored: dict[str, dict[str, tuple[float, int]]] = defaultdict(dict)  # (expiry, size)
        self._stored_bytes: dict[str, int] = defaultdict(int)
        self._streams: dict[str, dict[str, float]] = defaultdict(dict)  # token -> lease end
        self._busy: dict[str, str] = {}  # session -> its queued or running execution
        # What a broker would hold, newest first as LPUSH leaves it; nothing consumes it here.
        self.sent: dict[str, list[str]] = defaultdict(list)

    # admission and reads --------------------------------------------------------------------

    def create(
        self,
        execution: Execution,
        *,
        key: ApiKey,
        max_queued: int,
        message: Callable[[str], QueueEntry] | None = None,
    ) -> str:
        tenant, ident = execution.tenant, execution.id
        as_json = execution.model_dump_json()
        entry = None if message is None else message(as_json)
        session_id = execution.request.session_id
        ttl = self._settings.result_ttl_s
        with self._shared.cond:
            now = time.time()
            if len(self._queued) >= max_queued:
                raise queue_full()
            if len(self._active[tenant]) >= key.max_concurrency:
                raise over_concurrency(key)
            # Like the Redis store: expired results leave the tenant's count only at admission.
            for other, (expires_at, size) in list(self._stored[tenant].items()):
                if expires_at <= now:
                    self._stored_bytes[tenant] -= size
                    del self._stored[tenant][other]
            if self._stored_bytes[tenant] >= key.max_stored_bytes:
                raise over_stored_bytes(key, ttl)
            if session_id:
                if session_id in self._busy:
                    raise session_busy()
                self._busy[session_id] = ident
            self._records[ident] = wire(execution)
            self._ends.pop(ident, None)
            self._active[tenant].add(ident)
            self._queued[ident] = execution.created_at.timestamp()
            self._of_tenant[tenant].add(ident)
            life = self._settings.max_queue_age_s + int(execution.lease_s) + ttl
            self._events[ident] = _Events(expires_at=now + life)
            self._append(ident, "state", state_data(execution.state))
            if entry is not None:
                self.sent[entry.queue].insert(0, entry.message)
        return as_json

    def get(self, execution_id: str, tenant: str | None = None) -> Execution:
        with self._shared.cond:
            execution = self._live(execution_id)
        if execution is None or (tenant is not None and execution.tenant != tenant):
            raise NotFound(f"no execution {execution_id!r}")
        return execution

    def newest(self, tenant: str, limit: int) -> list[Execution]:
        with self._shared.cond:
            found = [self._live(ident) for ident in self._of_tenant[tenant]]
            live = [execution for execution in found if execution is not None]
            self._of_tenant[tenant] = {execution.id for execution in live}
        live.sort(key=lambda execution: (execution.created_at, execution.id), reverse=True)
        return live[: max(limit, 0)]

    # transitions ----------------------------------------------------------------------------

    def claim(self, execution_id: str, worker: str, queued: str | None = None) -> Execution | None:
        # `queued` saves Redis a read; here the record is at hand.
        execution, changed = self._transition(execution_id, claim_move(worker, utcnow()))
        return execution if changed else None

    def finish(
        self,
        execution_id: str,
        result: RunResult,
        *,
        claimed: Execution | None = None,
        output: Sequence[OutputChunk] = (),
    ) -> tuple[Execution, bool]:
        # `claimed` saves the Redis store a read; here every read is free, so it is not needed.
        del claimed
        return self._transition(execution_id, finish_move(result, utcnow()), output)

    def fail(
        self,
        execution_id: str,
        error: ExecutionError,
        *,
        only_from: frozenset[ExecutionState] | None = None,
        claimed: Execution | None = None,
    ) -> tuple[Execution, bool]:
        del claimed
        return self._transition(execution_id, fail_move(error, utcnow(), only_from))

    def cancel(self, execution_id: str, tenant: str) -> tuple[Execution, bool]:
        self.get(execution_id, tenant)
        return self._transition(execution_id, cancel_move(utcnow()))

    def attach_partial_result(self, execution_id: str, result: RunResult) -> None:
        """Keep what a cancelled run produced before it was killed; the state stays cancelled."""
        with self._shared.cond:
            current = self._live(execution_id)
            if current is None or current.state != ExecutionState.CANCELLED:
                return
            if current.result is not None:
                return
            updated = wire(current.model_copy(update={"result": result}))
            self._records[execution_id] = updated
            self._ends[execution_id] = time.time() + self._settings.result_ttl_s
            self._count_stored(updated)

    def cancel_requested(self, execution_id: str) -> bool:
        with self._shared.cond:
            return alive(self._cancels.get(execution_id, 0.0), time.time())

    def cancels_requested(self, execution_ids: Collection[str]) -> set[str]:
        with self._shared.cond:
            now = time.time()
            return {i for i in execution_ids if alive(self._cancels.get(i, 0.0), now)}

    def session_busy(self, session_id: str) -> bool:
        with self._shared.cond:
            return session_id in self._busy

    def _transition(
        self,
        execution_id: str,
        move: Move,
        output: Sequence[OutputChunk] = (),
    ) -> tuple[Execution, bool]:
        """Apply `move` if the record is in a state it may leave; (record, whether it moved).
        Held `output` goes on the event stream just before the new state, if it moves."""
        with self._shared.cond:
            current = self._live(execution_id)
            if current is None:
                raise NotFound(f"no execution {execution_id!r}")
            if not move.applies_to(current.state):
                return current, False
            updated = wire(move.change(current))
            for stream, text in output:
                self._append(execution_id, "output", output_data(stream, text))
            self._bookkeep(updated)
            return updated, True

    def _bookkeep(self, updated: Execution) -> None:
        ident, tenant = updated.id, updated.tenant
        self._records[ident] = updated
        self._queued.pop(ident, None)
        self._append(ident, "state", state_data(updated.state))
        if updated.state == ExecutionState.RUNNING:
            lease_end = updated.lease_expires_at.timestamp() if updated.lease_expires_at else 0
            self._running[ident] = lease_end
            return
        ends = time.time() + self._settings.result_ttl_s
        self._running.pop(ident, None)
        self._active[tenant].discard(ident)
        session_id = updated.request.session_id
        if updated.state in FINAL_STATES and session_id and self._busy.get(session_id) == ident:
            del self._busy[session_id]
        if updated.state == ExecutionState.CANCELLED:
            self._cancels[ident] = ends
        self._append(ident, "result", "{}")
        self._ends[ident] = ends
        self._events[ident].expires_at = ends
        self._count_stored(updated)

    def _count_stored(self, ended: Execution) -> None:
        """Charge the tenant for this record's size (again, if it grew) until it expires."""
        held = self._stored[ended.tenant]
        _, before = held.get(ended.id, (0.0, 0))
        size = stored_size(ended)
        held[ended.id] = (self._ends[ended.id], size)
        self._stored_bytes[ended.tenant] += size - before

    def _live(self, execution_id: str) -> Execution | None:
        """The record unless it expired; an expired one is dropped with its flag and events."""
        if not alive(self._ends.get(execution_id), time.time()):
            for table in (self._records, self._ends, self._cancels):
                table.pop(execution_id, None)
        return self._records.get(execution_id)

    # events ---------------------------------------------------------------------------------

    def append_output(self, execution_id: str, stream: Stream, text: str) -> None:
        with self._shared.cond:
            self._append(execution_id, "output", output_data(stream, text))

    def append_egress(self, execution_id: str, record: EgressRecord) -> None:
        with self._shared.cond:
            self._append(execution_id, "egress", record.model_dump_json())

    def read_events(self, execution_id: str, after: str, block_ms: int) -> list[Event]:
        """Events after `after`, waiting at most block_ms (capped at MAX_BLOCK_S) for the first.

        Callers loop until their own deadline.
        """
        floor = parse_stream_id(after)

        def ready() -> list[Event] | None:
            events = self._stream(execution_id)
            return (events.after(floor) or None) if events is not None else None

        if block_ms <= 0:
            with self._shared.cond:
                return ready() or []
        return self._shared.wait_for(ready, min(block_ms / 1000, MAX_BLOCK_S)) or []

    def wait_ended(self, execution_id: str, timeout_s: float) -> Execution | None:
        def ended() -> Execution | None:
            record = self._live(execution_id)
            return record if record is not None and record.state.final else None

        return self._shared.wait_for(ended, min(max(timeout_s, 0.0), MAX_BLOCK_S))

    def _append(self, execution_id: str, kind: EventKind, data: str) -> None:
        events = self._stream(execution_id)
        if events is None:
            events = self._events[execution_id] = _Events()
        events.add(kind, data, self._settings.event_stream_maxlen)
        self._shared.wake()

    def _stream(self, execution_id: str) -> _Events | None:
        events = self._events.get(execution_id)
        if events is not None and not alive(events.expires_at, time.time()):
            del self._events[execution_id]
            return None
        return events

    # counts and work lists ------------------------------------------------------------------

    def queue_length(self) -> int:
        with self._shared.cond:
            return len(self._queued)

    def active_count(self, tenant: str) -> int:
        with self._shared.cond:
            return len(self._active[tenant])

    def stored_bytes(self, tenant: str) -> int:
        with self._shared.cond:
            return self._stored_bytes[tenant]

    def running_ids(self) -> list[str]:
        with self._shared.cond:
            return sorted(self._running)

    def expired_leases(self, now: float) -> list[str]:
        with self._shared.cond:
            return _up_to(self._running, now)

    def queued_before(self, before: float) -> list[str]:
        with self._shared.cond:
            return _up_to(self._queued, before)

    # event-stream slots ---------------------------------------------------------------------

    def open_stream(self, tenant: str, token: str, *, limit: int, ttl_s: float) -> bool:
        with self._shared.cond:
            now = time.time()
            slots = self._streams[tenant]
            for other, lease_end in list(slots.items()):
                if lease_end <= now:
                    del slots[other]
            if len(slots) >= limit:
                return False
            slots[token] = now + ttl_s
            return True

    def renew_stream(self, tenant: str, token: str, *, ttl_s: float) -> None:
        with self._shared.cond:
            slots = self._streams[tenant]
            if token in slots:
                slots[token] = time.time() + ttl_s

    def close_stream(self, tenant: str, token: str) -> None:
        with self._shared.cond:
            self._streams[tenant].pop(token, None)


def _up_to(scores: dict[str, float], bound: float) -> list[str]:
    """Ids scored at most `bound`, lowest score first (ties by id), as ZRANGEBYSCORE orders."""
    return [ident for score, ident in sorted((s, i) for i, s in scores.items()) if score <= bound]
