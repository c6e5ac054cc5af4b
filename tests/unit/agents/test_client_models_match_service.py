"""The client's wire models against the service's (the API's own, in `api/wire/`): a request the
client can build is one the service reads, and nothing the client expects goes unsent.

Request models must match field for field (and share their names, so a reader of either side
finds the other); a response model may read fewer fields than the service sends, never others.
"""

from __future__ import annotations

import enum
from typing import get_args

import pytest
from pydantic import BaseModel

from agent_client.service import models as client
from executor_service.api.wire import catalogue, events, execution_requests, executions, sessions
from executor_service.jobs import execution as records


def fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


@pytest.mark.parametrize(
    ("ours", "service"),
    [
        (client.ExecutionCreate, execution_requests.ExecutionCreate),
        (client.LimitsOverride, execution_requests.LimitsOverride),
        (client.NetworkOverride, execution_requests.NetworkOverride),
        (client.Destination, execution_requests.Destination),
        (client.InputFile, execution_requests.InputFile),
    ],
    ids=lambda model: model.__name__,
)
def test_request_models_are_the_services_field_for_field_and_by_name(
    ours: type[BaseModel], service: type[BaseModel]
) -> None:
    assert ours.__name__ == service.__name__
    assert fields(ours) == fields(service)


@pytest.mark.parametrize(
    ("ours", "service"),
    [
        (client.Execution, executions.ExecutionView),
        (client.RunResult, executions.RunResult),
        (client.OutputFile, executions.OutputFile),
        (client.EgressRecord, executions.EgressRecord),
        (client.ExecutionErrorInfo, executions.ExecutionError),
        (client.Session, sessions.SessionView),
        (client.FileInfo, sessions.WorkspaceFileView),
        (client.PolicyInfo, catalogue.PolicyView),
        (client.RuntimeInfo, catalogue.RuntimeView),
        (client.StateEvent, events.StateEvent),
        (client.OutputEvent, events.OutputEvent),
    ],
    ids=lambda model: model.__name__,
)
def test_response_models_read_only_what_the_service_sends(
    ours: type[BaseModel], service: type[BaseModel]
) -> None:
    # `kind` is the client's tag for an event, taken from the SSE event's name, not its data.
    assert fields(ours) - {"kind"} <= fields(service)


@pytest.mark.parametrize(
    ("ours", "service"),
    [
        (client.ExecutionState, executions.ExecutionState),
        (client.RunStatus, executions.RunStatus),
    ],
    ids=["ExecutionState", "RunStatus"],
)
def test_states_and_statuses_are_the_services(ours: object, service: type[enum.Enum]) -> None:
    assert set(get_args(ours)) == {member.value for member in service}


def test_final_states_are_the_services() -> None:
    assert {state.value for state in records.FINAL_STATES} == client.FINAL_STATES
