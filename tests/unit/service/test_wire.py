"""The API's wire models and their mappers: the JSON a client gets from a record is the v1
contract, field for field, and every field a record or the runner adds is a decision (mapped, or
kept server-side), never an accident."""

from __future__ import annotations

import base64
import enum
import json
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest
from pydantic import BaseModel, ValidationError

from executor_service.api.wire import events, execution_requests, executions, sessions
from executor_service.egress import audit
from executor_service.jobs import execution as records
from executor_service.jobs import session as session_records
from executor_service.jobs.event import Event
from executor_service.policy import model as policy_model
from executor_service.sandbox import spec

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def finished_record() -> records.Execution:
    result = spec.RunResult(
        status=spec.RunStatus.OK,
        exit_code=0,
        stdout="1\n",
        stderr="",
        wall_time_s=0.25,
        cpu_time_s=0.1,
        memory_peak_bytes=4096,
        files=(
            spec.OutputFile(path="out/a.csv", size_bytes=3, content=b"a,b"),
            spec.OutputFile(path="link", size_bytes=0, content=b"", error="a symlink"),
        ),
        egress=(
            audit.EgressRecord(
                host="pypi.org", port=443, allowed=True, address="203.0.113.7", bytes_sent=10
            ),
        ),
        egress_dropped=2,
        outputs=(
            spec.RichOutput(mime_type="image/png", data=b"\x89PNG", size_bytes=4),
            spec.RichOutput(mime_type="text/plain", data=b"x" * 8, size_bytes=9, truncated=True),
        ),
    )
    return records.Execution(
        id="ex_1",
        tenant="acme",
        state=records.ExecutionState.FINISHED,
        request=records.ExecutionRequest(
            language="python", code="print(1)", policy="default", session_id="se_1"
        ),
        created_at=T0,
        started_at=T0 + timedelta(seconds=1),
        finished_at=T0 + timedelta(seconds=2),
        result=result,
        worker="w1",
        claimed_at=T0,
        claims=1,
    )


def test_an_execution_reaches_the_wire_as_the_contract_says() -> None:
    sent = json.loads(executions.execution_view(finished_record()).model_dump_json())
    assert sent == {
        "id": "ex_1",
        "state": "finished",
        "language": "python",
        "policy": "default",
        "session_id": "se_1",
        "created_at": "2026-01-02T03:04:05Z",
        "started_at": "2026-01-02T03:04:06Z",
        "finished_at": "2026-01-02T03:04:07Z",
        "result": {
            "status": "ok",
            "exit_code": 0,
            "stdout": "1\n",
            "stderr": "",
            "stdout_truncated": False,
            "stderr_truncated": False,
            "wall_time_s": 0.25,
            "cpu_time_s": 0.1,
            "memory_peak_bytes": 4096,
            "files": [
                {
                    "path": "out/a.csv",
                    "size_bytes": 3,
                    "content": sent["result"]["files"][0]["content"],
                    "truncated": False,
                    "error": None,
                },
                {
                    "path": "link",
                    "size_bytes": 0,
                    "content": "",
                    "truncated": False,
                    "error": "a symlink",
                },
            ],
            "message": "",
            "egress": [
                {
                    "host": "pypi.org",
                    "port": 443,
                    "allowed": True,
                    "reason": "",
                    "method": "CONNECT",
                    "address": "203.0.113.7",
                    "bytes_sent": 10,
                    "bytes_received": 0,
                }
            ],
            "egress_dropped": 2,
            "outputs": [
                {
                    "mime_type": "image/png",
                    "data": base64.b64encode(b"\x89PNG").decode(),
                    "size_bytes": 4,
                    "truncated": False,
                },
                {
                    "mime_type": "text/plain",
                    "data": base64.b64encode(b"x" * 8).decode(),
                    "size_bytes": 9,
                    "truncated": True,
                },
            ],
        },
        "error": None,
    }
    assert base64.b64decode(sent["result"]["files"][0]["content"]) == b"a,b"


def test_a_failed_execution_carries_the_services_reason() -> None:
    failed = finished_record().model_copy(
        update={
            "state": records.ExecutionState.FAILED,
            "result": None,
            "error": records.ExecutionError(code="sandbox_error", message="engine away"),
        }
    )
    sent = json.loads(executions.execution_view(failed).model_dump_json())
    assert (sent["state"], sent["result"]) == ("failed", None)
    assert sent["error"] == {"code": "sandbox_error", "message": "engine away"}


def test_a_session_reaches_the_wire_without_its_container() -> None:
    record = session_records.Session(
        id="se_1",
        tenant="acme",
        policy="default",
        language="python",
        kind=session_records.SessionKind.INTERPRETER,
        created_at=T0,
        last_used_at=T0 + timedelta(seconds=30),
        idle_timeout_s=60,
        max_lifetime_s=600,
        container_id="c0ffee",
    )
    sent = json.loads(sessions.session_view(record).model_dump_json())
    assert sent == {
        "id": "se_1",
        "policy": "default",
        "language": "python",
        "kind": "interpreter",
        "state": "active",
        "created_at": "2026-01-02T03:04:05Z",
        "last_used_at": "2026-01-02T03:04:35Z",
        "expires_at": "2026-01-02T03:05:35Z",
        "idle_timeout_s": 60,
        "max_lifetime_s": 600,
    }


# Record fields a caller never sees; a new record field must be added here or to the view.
EXECUTION_SERVER_SIDE = {
    "tenant",
    "request",
    "worker",
    "claimed_at",
    "claims",
    "lease_s",
    "lease_expires_at",
}
SESSION_SERVER_SIDE = {"tenant", "container_id"}


@pytest.mark.parametrize(
    ("wire", "record", "server_side", "derived"),
    [
        (
            executions.ExecutionView,
            records.Execution,
            EXECUTION_SERVER_SIDE,
            {"language", "policy", "session_id"},  # from the request
        ),
        (sessions.SessionView, session_records.Session, SESSION_SERVER_SIDE, {"expires_at"}),
        (executions.RunResult, spec.RunResult, set(), set()),
        (executions.OutputFile, spec.OutputFile, set(), set()),
        (executions.RichOutput, spec.RichOutput, set(), set()),
        (executions.EgressRecord, audit.EgressRecord, set(), set()),
        (executions.ExecutionError, records.ExecutionError, set(), set()),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_every_record_field_is_sent_or_kept_server_side_on_purpose(
    wire: type[BaseModel], record: type[BaseModel], server_side: set[str], derived: set[str]
) -> None:
    assert fields(wire) == (fields(record) - server_side) | derived


@pytest.mark.parametrize(
    ("wire", "record"),
    [
        (executions.ExecutionState, records.ExecutionState),
        (executions.RunStatus, spec.RunStatus),
        (sessions.SessionState, session_records.SessionState),
    ],
    ids=lambda value: value.__name__,
)
def test_wire_states_are_the_records_states(wire: type[enum.Enum], record: type[enum.Enum]) -> None:
    assert [member.value for member in wire] == [member.value for member in record]


def test_egress_reasons_are_the_proxys() -> None:
    assert get_args(executions.EgressReason) == get_args(audit.EgressReason)


# --- requests -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "record"),
    [
        (execution_requests.LimitsOverride, spec.LimitsOverride),
        (execution_requests.NetworkOverride, policy_model.NetworkOverride),
        (execution_requests.Destination, policy_model.Destination),
        (execution_requests.InputFile, records.InputFile),
    ],
    ids=lambda value: value.__name__,
)
def test_request_parts_carry_every_field_the_record_takes(
    wire: type[BaseModel], record: type[BaseModel]
) -> None:
    assert fields(wire) == fields(record)


def test_a_body_maps_onto_the_record_it_asks_for() -> None:
    body = execution_requests.ExecutionCreate.model_validate(
        {
            "language": "python",
            "code": "print(1)",
            "files": [{"path": "data/in.csv", "content": "YSxiCjEsMgo="}],
            "stdin": "x",
            "args": ["-v"],
            "policy": "ignored: admission resolves it",
            "limits": {name: 2 for name in spec.LimitsOverride.model_fields},
            "network": {
                "mode": "allowlist",
                "allow": [{"host": "PyPI.org.", "ports": [443]}, {"cidr": "203.0.113.7/32"}],
                "max_connections": 3,
                "max_bytes": 4096,
            },
            "session_id": "se_1",
            "collect": ["out/*.csv"],
            "wait": True,
        }
    )
    request = execution_requests.execution_request(body, "default")
    assert request == records.ExecutionRequest(
        language="python",
        code="print(1)",
        files=(records.InputFile(path="data/in.csv", content=b"YSxiCjEsMgo="),),
        stdin="x",
        args=("-v",),
        policy="default",
        limits=spec.LimitsOverride(**{name: 2 for name in spec.LimitsOverride.model_fields}),
        network=policy_model.NetworkOverride(
            mode="allowlist",
            allow=(
                policy_model.Destination(host="pypi.org", ports=(443,)),
                policy_model.Destination(cidr="203.0.113.7/32"),
            ),
            max_connections=3,
            max_bytes=4096,
        ),
        session_id="se_1",
        collect=("out/*.csv",),
    )
    assert request.files[0].content == b"a,b\n1,2\n"
    # The record stores what it was given, and reads it back the same.
    assert records.ExecutionRequest.model_validate_json(request.model_dump_json()) == request


@pytest.mark.parametrize(
    ("destination", "reason"),
    [
        ({"cidr": "not-a-net"}, "is not a network"),
        ({"host": "pypi.org", "cidr": "203.0.113.0/24"}, "give either host or cidr"),
        ({}, "give either host or cidr"),
    ],
)
def test_a_destination_the_policy_would_refuse_is_refused_when_the_body_is_read(
    destination: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        execution_requests.ExecutionCreate.model_validate(
            {"language": "python", "network": {"allow": [destination]}}
        )
    error = refused.value.errors()[0]
    assert error["loc"] == ("network", "allow", 0)
    assert reason in error["msg"]


# --- events -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("state", {"state": "running"}),
        ("output", {"stream": "stderr", "data": "x\n"}),
        (
            "egress",
            json.loads(
                audit.EgressRecord(
                    host="a.org", port=80, allowed=False, reason="not_allowlisted"
                ).model_dump_json()
            ),
        ),
    ],
)
def test_stored_events_reach_the_stream_with_the_same_fields(
    kind: Any, data: dict[str, Any]
) -> None:
    payload = events.event_payload(Event(id="1-0", kind=kind, data=data))
    assert json.loads(payload.model_dump_json()) == data


def test_a_result_event_has_no_payload_of_its_own() -> None:
    with pytest.raises(ValueError, match="no payload"):
        events.event_payload(Event(id="1-0", kind="result", data={}))


def test_bytes_go_out_as_standard_base64_and_come_back_whole() -> None:
    """Standard alphabet (+ and /), which any b64decode reads; the URL-safe one (- and _) is
    silently misread by a standard decoder."""
    from executor_service.api.wire.executions import OutputFile as WireFile

    raw = bytes([0xFB, 0xFF, 0xFE])
    text = WireFile(path="a", size_bytes=3, content=raw).model_dump_json()
    assert '"content":"+//+"' in text
    assert WireFile.model_validate_json(text).content == raw
    from agent_client.service.models import OutputFile as ClientFile

    assert ClientFile.model_validate_json(text).data == raw
    assert ClientFile(path="a", size_bytes=3, content="-__-").data == raw
