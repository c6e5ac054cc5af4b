"""The interfaces every process uses to share state, one per concern, and the bundle of them.

Each has a Redis implementation (the service's) and an in-memory one (unit tests); one behaviour
suite runs against both. Every state change is checked, so two writers never both win.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from executor_service.egress.audit import EgressRecord
from executor_service.jobs.dispatch import QueueEntry
from executor_service.jobs.event import Event, OutputChunk
from executor_service.jobs.execution import Execution, ExecutionError, ExecutionState
from executor_service.jobs.session import Session
from executor_service.jobs.session_commands import SessionCommand, SessionReply
from executor_service.jobs.tenant import ApiKey
from executor_service.sandbox.runner import Stream
from executor_service.sandbox.spec import RunResult


class KeyStore(Protocol):
    """API keys by their hash; the key itself is never stored."""

    def add(self, key: str, record: ApiKey) -> None: ...
    def get(self, key: str) -> ApiKey | None: ...
    def all(self) -> list[ApiKey]: ...
    def revoke(self, key_id: str) -> bool: ...
    def create_first(self, key: str, record: ApiKey) -> bool:
        """Add `key` only if no key was ever made; True for the one caller that did."""
        ...


class ExecutionStore(Protocol):
    """Execution records, their event streams, and the tenant bounds checked at admission."""

    def create(
        self,
        execution: Execution,
        *,
        key: ApiKey,
        max_queued: int,
        message: Callable[[str], QueueEntry] | None = None,
    ) -> str:
        """Admit atomically: queue length, the tenant's concurrency and stored bytes, the
        session's busy flag. Raises Overloaded, QuotaExceeded or SessionBusy. Returns the
        record as stored (JSON). `message` makes the task message from that JSON (which it may
        carry to the claim): it is queued in the same step, only if the execution is admitted."""
        ...

    def get(self, execution_id: str, tenant: str | None = None) -> Execution: ...
    def newest(self, tenant: str, limit: int) -> list[Execution]: ...

    def claim(self, execution_id: str, worker: str, queued: str | None = None) -> Execution | None:
        """queued -> running for exactly one caller, with a lease of the record's `lease_s`.

        `queued` is the record as `create` stored it, when the task message carried it: while
        the record is still that one the claim need not read it first."""
        ...

    def finish(
        self,
        execution_id: str,
        result: RunResult,
        *,
        claimed: Execution | None = None,
        output: Sequence[OutputChunk] = (),
    ) -> tuple[Execution, bool]:
        """running -> finished. `claimed`, the record `claim` returned to this caller, lets a
        store skip reading the record when nobody changed it since (the worker's hot path).
        `output`, live output the worker held back, goes on the event stream just before the
        end, in the same write (dropped if the finish does not apply: the result has it)."""
        ...

    def fail(
        self,
        execution_id: str,
        error: ExecutionError,
        *,
        only_from: frozenset[ExecutionState] | None = None,
        claimed: Execution | None = None,
    ) -> tuple[Execution, bool]: ...
    def cancel(self, execution_id: str, tenant: str) -> tuple[Execution, bool]: ...
    def attach_partial_result(self, execution_id: str, result: RunResult) -> None: ...
    def cancel_requested(self, execution_id: str) -> bool: ...
    def cancels_requested(self, execution_ids: Collection[str]) -> set[str]:
        """Which of these executions a cancel waits on, asked in one go (one watcher per worker
        process checks all its runs at once)."""
        ...

    def session_busy(self, session_id: str) -> bool:
        """An execution of the session is queued or running (it is not idle, whatever its clock)."""
        ...

    def append_output(self, execution_id: str, stream: Stream, text: str) -> None: ...
    def append_egress(self, execution_id: str, record: EgressRecord) -> None:
        """A connection the proxy refused, for readers of the event stream."""
        ...

    def read_events(self, execution_id: str, after: str, block_ms: int) -> list[Event]: ...
    def wait_ended(self, execution_id: str, timeout_s: float) -> Execution | None:
        """The record once the execution has ended, None while it has not (or there is none),
        waiting at most timeout_s (capped at MAX_BLOCK_S): one blocking read, however many
        events the run writes meanwhile, and the record comes with it. Callers loop."""
        ...

    def queue_length(self) -> int: ...
    def active_count(self, tenant: str) -> int: ...
    def stored_bytes(self, tenant: str) -> int: ...
    def running_ids(self) -> list[str]: ...
    def expired_leases(self, now: float) -> list[str]:
        """Running executions whose lease ended before `now` (epoch seconds)."""
        ...

    def queued_before(self, before: float) -> list[str]:
        """Queued executions created before `before` (epoch seconds), oldest first."""
        ...

    def open_stream(self, tenant: str, token: str, *, limit: int, ttl_s: float) -> bool:
        """Hold one of the tenant's `limit` event-stream slots for `ttl_s`; False when full."""
        ...

    def renew_stream(self, tenant: str, token: str, *, ttl_s: float) -> None: ...
    def close_stream(self, tenant: str, token: str) -> None: ...


class SessionStore(Protocol):
    """Session records and the tenant's bound on open sessions."""

    def create(self, session: Session, *, limit: int) -> None:
        """Store an active session unless the tenant already has `limit`: QuotaExceeded."""
        ...

    def get(self, session_id: str, tenant: str | None = None) -> Session: ...
    def of_tenant(self, tenant: str) -> list[Session]: ...
    def update(
        self, session_id: str, change: Callable[[Session], Session], known: Session | None = None
    ) -> Session:
        """Apply `change` to the current record. `known`: the record as the caller last read
        it; while nobody changed it since, the update may skip reading it again."""
        ...

    def active_ids(self) -> list[str]: ...


class SessionOpQueue(Protocol):
    """Session operations, API -> worker, on their own path: long executions never starve them.

    File bytes travel beside the command, never inside a broker message. A command is performed
    only by the worker that `claim`s it; an API that gave up first `abandon`s it, and then no
    worker may act on it, so an operation that answered failure never takes effect later.
    """

    def push(self, command: SessionCommand, blob: bytes | None = None) -> None: ...
    def take(self, timeout_s: float) -> tuple[SessionCommand, bytes | None] | None: ...
    def claim(self, command_id: str) -> bool: ...
    def abandon(self, command_id: str) -> bool: ...
    def reply(self, command_id: str, reply: SessionReply, blob: bytes | None = None) -> None: ...
    def wait_reply(
        self, command_id: str, timeout_s: float
    ) -> tuple[SessionReply, bytes | None] | None: ...


class WorkerRegistry(Protocol):
    """Which workers are alive, and what they last saw of the engine."""

    def heartbeat(self, worker: str) -> None: ...
    def forget(self, worker: str) -> None: ...
    def alive(self, worker: str) -> bool: ...
    def any_alive(self) -> bool: ...
    def set_images_present(self, present: Mapping[str, bool]) -> None: ...
    def images_present(self) -> dict[str, bool]: ...


class StoreHealth(Protocol):
    """Whether the shared state can be trusted to keep what it accepts."""

    def ping(self) -> bool: ...
    def persistent(self) -> bool:
        """Writes survive a restart (Redis: AOF on) and nothing queued can be evicted."""
        ...


@dataclass(frozen=True)
class Stores:
    keys: KeyStore
    executions: ExecutionStore
    sessions: SessionStore
    session_ops: SessionOpQueue
    workers: WorkerRegistry
    health: StoreHealth
