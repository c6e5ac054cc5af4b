"""The execution record: what was asked, which state it is in, and what came of it."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import Base64Bytes, BaseModel, ConfigDict, Field

from executor_service.policy.model import NetworkOverride
from executor_service.sandbox.spec import LimitsOverride, RunResult


class ExecutionState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({ExecutionState.FINISHED, ExecutionState.CANCELLED, ExecutionState.FAILED})

# The only moves a record may make; anything else is a second claimer or a stale message.
TRANSITIONS: dict[ExecutionState, frozenset[ExecutionState]] = {
    ExecutionState.QUEUED: frozenset(
        {ExecutionState.RUNNING, ExecutionState.CANCELLED, ExecutionState.FAILED}
    ),
    ExecutionState.RUNNING: frozenset(
        {ExecutionState.FINISHED, ExecutionState.CANCELLED, ExecutionState.FAILED}
    ),
    ExecutionState.FINISHED: frozenset(),
    ExecutionState.CANCELLED: frozenset(),
    ExecutionState.FAILED: frozenset(),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputFile(_Model):
    """A file the caller places in the workspace before the code runs."""

    path: Annotated[str, Field(min_length=1, max_length=1024)]
    content: Base64Bytes  # base64 in the stored JSON


class ExecutionRequest(_Model):
    """What a caller asked for, after the API resolved the policy; the worker plans from this."""

    language: str
    code: str | None = None
    files: tuple[InputFile, ...] = ()
    stdin: str = ""
    args: tuple[str, ...] = ()
    policy: str
    limits: LimitsOverride | None = None
    network: NetworkOverride | None = None
    session_id: str | None = None
    collect: tuple[str, ...] = ()


class ExecutionError(_Model):
    """Why the service, not the user's code, could not finish an execution."""

    code: str
    message: str


class Execution(_Model):
    """The stored record; `claims` counts successful claims and must never exceed one."""

    id: str
    tenant: str
    state: ExecutionState = ExecutionState.QUEUED
    request: ExecutionRequest
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: RunResult | None = None
    error: ExecutionError | None = None
    worker: str | None = None
    claimed_at: datetime | None = None
    claims: int = 0
    # How long a claim may last (wall time + margin): past it the janitor fails the run,
    # whatever its worker's heartbeats say, so no record stays running for ever.
    lease_s: float = 3600.0
    lease_expires_at: datetime | None = None


@dataclass(frozen=True)
class Move:
    """One checked move of a record: the states it may leave, where it goes, what it writes.

    The rules live here, once; each store only applies a move atomically (and refuses it if
    the record is in another state, which is how a second claimer or a late finish loses).
    """

    allowed_from: frozenset[ExecutionState]
    target: ExecutionState
    change: Callable[[Execution], Execution]

    def applies_to(self, state: ExecutionState) -> bool:
        return state in self.allowed_from and self.target in TRANSITIONS[state]


def claim_move(worker: str, now: datetime) -> Move:
    def start(current: Execution) -> Execution:
        return current.model_copy(
            update={
                "state": ExecutionState.RUNNING,
                "started_at": now,
                "worker": worker,
                "claimed_at": now,
                "claims": current.claims + 1,
                "lease_expires_at": now + timedelta(seconds=current.lease_s),
            }
        )

    return Move(frozenset({ExecutionState.QUEUED}), ExecutionState.RUNNING, start)


def finish_move(result: RunResult, now: datetime) -> Move:
    return Move(
        frozenset({ExecutionState.RUNNING}),
        ExecutionState.FINISHED,
        lambda current: current.model_copy(
            update={"state": ExecutionState.FINISHED, "finished_at": now, "result": result}
        ),
    )


def fail_move(
    error: ExecutionError, now: datetime, only_from: frozenset[ExecutionState] | None = None
) -> Move:
    return Move(
        only_from or frozenset({ExecutionState.QUEUED, ExecutionState.RUNNING}),
        ExecutionState.FAILED,
        lambda current: current.model_copy(
            update={"state": ExecutionState.FAILED, "finished_at": now, "error": error}
        ),
    )


def cancel_move(now: datetime) -> Move:
    return Move(
        frozenset({ExecutionState.QUEUED, ExecutionState.RUNNING}),
        ExecutionState.CANCELLED,
        lambda current: current.model_copy(
            update={"state": ExecutionState.CANCELLED, "finished_at": now}
        ),
    )
