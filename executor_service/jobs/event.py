"""Events of one execution, in the order its event stream holds them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from executor_service.jobs.execution import ExecutionState
    from executor_service.sandbox.runner import Stream

EventKind = Literal["state", "output", "egress", "result"]
# Output as the worker hands it to the store: which stream, and its text.
OutputChunk = tuple["Stream", str]


def state_data(state: ExecutionState) -> str:
    """A state event's stored data (both stores write this shape)."""
    return json.dumps({"state": state.value})


def output_data(stream: Stream, text: str) -> str:
    """An output event's stored data (both stores write this shape)."""
    return json.dumps({"stream": stream, "data": text})


@dataclass(frozen=True)
class Event:
    """One entry of an execution's stream, as stored. `result` carries no data: readers load the
    record. The API maps each onto its event payload; the stored form is not the wire form."""

    id: str  # the stream entry id, so a reader can resume after it
    kind: EventKind
    data: dict[str, Any]
