"""The payloads of an execution's server-sent events (GET /v1/executions/{id}/events).

    event: state   {"state": "running"}
    event: output  {"stream": "stdout", "data": "..."}
    event: egress  an EgressRecord, as the proxy decided
    event: display a RichOutput of an interpreter session's cell, just before the result
    event: result  the ExecutionView, once it is final

The store keeps its own format for events; it is read here and mapped, so what a stored event
holds can change without the stream changing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from executor_service.api.wire.executions import EgressRecord, ExecutionState, egress_record
from executor_service.egress import audit
from executor_service.jobs import execution as records
from executor_service.jobs.event import Event


class StateEvent(BaseModel):
    """The execution moved to `state`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: ExecutionState


class OutputEvent(BaseModel):
    """A piece of what the code printed, as it printed it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream: Literal["stdout", "stderr"]
    data: str


def state_event(state: records.ExecutionState) -> StateEvent:
    return StateEvent(state=ExecutionState(state.value))


def event_payload(event: Event) -> StateEvent | OutputEvent | EgressRecord:
    """The payload of a stored state, output or egress event (a result event has none: its
    payload is the record, read when it arrives)."""
    data = event.data
    if event.kind == "state":
        return state_event(records.ExecutionState(data["state"]))
    if event.kind == "output":
        return OutputEvent(stream=data["stream"], data=data["data"])
    if event.kind == "egress":
        return egress_record(audit.EgressRecord.model_validate(data))
    raise ValueError(f"a {event.kind} event carries no payload of its own")
