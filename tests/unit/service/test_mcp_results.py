"""The MCP tools' pure parts: records to answers, policies to descriptions, errors to errors."""

from __future__ import annotations

import base64

import pytest
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel
from redis import ConnectionError as RedisConnectionError

from executor_service.api.mcp.descriptions import tool_descriptions
from executor_service.api.mcp.results import (
    STATUSES,
    file_content,
    is_answer,
    run_output,
    run_text,
)
from executor_service.api.mcp.tools import tool_errors
from executor_service.errors import LimitAboveCeiling, Overloaded
from executor_service.jobs.execution import ExecutionError, ExecutionState
from executor_service.policy.model import Policy
from executor_service.sandbox.spec import Limits, RunResult, RunStatus
from tests.unit.service.records import execution


def test_every_way_a_run_can_end_has_a_name_in_the_mcp_answer() -> None:
    assert {status.value for status in RunStatus} == STATUSES


def test_a_timeout_maps_to_its_status_and_flag() -> None:
    record = execution().model_copy(
        update={
            "state": ExecutionState.FINISHED,
            "result": RunResult(
                status=RunStatus.TIMEOUT,
                exit_code=None,
                stdout="partial\n",
                stderr="",
                stdout_truncated=True,
                wall_time_s=1.02,
                message="killed at the 1 s wall-time limit",
            ),
        }
    )
    output = run_output(record)
    assert output.status == RunStatus.TIMEOUT
    assert output.timed_out is True
    assert output.stdout_truncated is True
    assert output.execution_id == record.id
    text = run_text(output)
    assert text.startswith("status: timeout, 1.02 s")
    assert "wall-time limit and was killed" in text
    assert "--- stdout (truncated at the output limit) ---\npartial" in text
    assert "stderr" not in text


def test_a_non_zero_exit_keeps_its_code_and_streams() -> None:
    record = execution(session_id="se_1").model_copy(
        update={
            "state": ExecutionState.FINISHED,
            "result": RunResult(
                status=RunStatus.ERROR, exit_code=3, stdout="", stderr="boom\n", wall_time_s=0.1
            ),
        }
    )
    output = run_output(record)
    assert (output.status, output.exit_code, output.timed_out) == (RunStatus.ERROR, 3, False)
    assert output.session_id == "se_1"
    assert run_text(output).splitlines() == [
        "status: error, exit code 3, 0.10 s",
        "--- stderr ---",
        "boom",
    ]


def test_a_run_cancelled_before_it_ran_is_still_an_answer() -> None:
    record = execution().model_copy(update={"state": ExecutionState.CANCELLED})
    assert is_answer(record)
    output = run_output(record)
    assert output.status == RunStatus.CANCELLED
    assert output.exit_code is None
    assert output.wall_time_s is None


def test_a_failed_run_is_not_an_answer() -> None:
    record = execution().model_copy(
        update={
            "state": ExecutionState.FAILED,
            "error": ExecutionError(code="sandbox_error", message="engine gone"),
        }
    )
    assert not is_answer(record)


def test_file_content_is_text_when_it_can_be_and_base64_otherwise() -> None:
    text = file_content("a.txt", "héllo".encode())
    assert (text.encoding, text.content, text.size_bytes) == ("utf-8", "héllo", 6)
    binary = file_content("a.bin", b"\xff\x00")
    assert binary.encoding == "base64"
    assert base64.b64decode(binary.content) == b"\xff\x00"


def policy(**fields: object) -> Policy:
    return Policy.model_validate(
        {
            "schema_version": 1,
            "name": "p",
            "languages": {"python": "python"},
            "limits": Limits(wall_time_s=7, memory_mb=128).model_dump(),
            **fields,
        }
    )


def test_descriptions_carry_the_policys_limits_and_network() -> None:
    closed = tool_descriptions(policy())
    assert "7 s wall time" in closed["run_code"]
    assert "128 MB memory" in closed["run_code"]
    assert "No network" in closed["run_code"]
    assert "Nothing persists" in closed["run_code"]
    assert "Languages: python." in closed["create_session"]
    allowlisted = tool_descriptions(
        policy(network={"mode": "allowlist", "allow": [{"host": "pypi.org", "ports": [443]}]})
    )
    assert "No network" not in allowlisted["run_code"]
    assert "pypi.org:443" in allowlisted["run_code"]


class _Body(BaseModel):
    n: int


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (
            LimitAboveCeiling("wall_time_s is above the policy's 30", field="limits.wall_time_s"),
            "limit_above_ceiling: wall_time_s is above the policy's 30 (field limits.wall_time_s)",
        ),
        (Overloaded("the queue is full", retry_after_s=2), "overloaded: the queue is full; retry"),
        (RedisConnectionError("down"), "store_unavailable:"),
    ],
)
def test_service_errors_become_tool_errors_with_their_code(
    raised: Exception, expected: str
) -> None:
    with pytest.raises(ToolError) as caught, tool_errors():
        raise raised
    assert str(caught.value).startswith(expected)


def test_a_malformed_argument_names_its_field() -> None:
    with pytest.raises(ToolError) as caught, tool_errors():
        _Body.model_validate({"n": "x"})
    assert str(caught.value).startswith("validation_error: n: ")


def test_anything_else_is_not_dressed_up_as_a_tool_error() -> None:
    with pytest.raises(KeyError), tool_errors():
        raise KeyError("bug")
