"""LangChain's own tool machinery (invoke, ainvoke, tool calls) running our tool on the service."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("langchain_core")

from langchain_core.messages import ToolMessage
from pydantic import ValidationError

from agent_client.adapters.langchain import SandboxCodeTool
from agent_client.errors import Unauthorized
from agent_client.service import ExecutionClient
from agent_client.service.models import LimitsOverride

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.redis]


async def session_states(base_url: str, api_key: str) -> dict[str, str]:
    async with ExecutionClient(base_url, api_key) as client:
        return {s.id: s.state for s in await client.list_sessions()}


def test_invoke_runs_code_and_a_failure_is_a_result(service: tuple[str, str]) -> None:
    base_url, api_key = service
    tool = SandboxCodeTool(service_url=base_url, api_key=api_key)

    ok = tool.invoke({"code": "import os\nprint(os.getuid() != 0, 6 * 7)"})
    failed = tool.invoke({"code": "echo oops >&2; exit 4", "language": "bash"})

    assert (ok["status"], ok["exit_code"], ok["stdout"]) == ("ok", 0, "True 42\n")
    assert (failed["status"], failed["exit_code"], failed["stderr"]) == ("error", 4, "oops\n")
    assert tool.session_ids == {}


async def test_ainvoke_with_a_tool_call_gives_a_tool_message(service: tuple[str, str]) -> None:
    base_url, api_key = service
    tool = SandboxCodeTool(
        service_url=base_url, api_key=api_key, limits=LimitsOverride(wall_time_s=2)
    )

    message = await tool.ainvoke(
        {
            "type": "tool_call",
            "id": "call_1",
            "name": "run_code",
            "args": {"code": "import time; time.sleep(60)"},
        }
    )

    assert isinstance(message, ToolMessage)
    assert message.tool_call_id == "call_1"
    assert json.loads(str(message.content))["status"] == "timeout"


async def test_sync_invoke_inside_a_running_loop(service: tuple[str, str]) -> None:
    base_url, api_key = service
    tool = SandboxCodeTool(service_url=base_url, api_key=api_key)

    result = tool.invoke({"code": "print('from a running loop')"})

    assert result["stdout"] == "from a running loop\n"


def test_session_bound_tool_keeps_a_file_across_calls(service: tuple[str, str]) -> None:
    base_url, api_key = service
    tool = SandboxCodeTool(service_url=base_url, api_key=api_key, session=True)
    try:
        wrote = tool.invoke({"code": "open('state.txt', 'w').write('kept across calls')"})
        read = tool.invoke({"code": "print(open('state.txt').read())"})
        sessions = tool.session_ids
    finally:
        tool.close()

    assert wrote["status"] == "ok"
    assert read["stdout"] == "kept across calls\n"
    assert list(sessions) == ["python"]
    assert tool.session_ids == {}

    assert asyncio.run(session_states(base_url, api_key)).get(sessions["python"]) != "active"


def test_a_tool_without_a_session_forgets_files(service: tuple[str, str]) -> None:
    base_url, api_key = service
    tool = SandboxCodeTool(service_url=base_url, api_key=api_key)

    tool.invoke({"code": "open('state.txt', 'w').write('gone')"})
    read = tool.invoke({"code": "print(open('state.txt').read())"})

    assert read["status"] == "error"
    assert "FileNotFoundError" in read["stderr"]


def test_arguments_outside_the_schema_are_refused_before_any_run(
    service: tuple[str, str],
) -> None:
    base_url, api_key = service
    tool = SandboxCodeTool(service_url=base_url, api_key=api_key)

    with pytest.raises(ValidationError) as missing:
        tool.invoke({"source": "print(1)"})
    with pytest.raises(ValidationError) as empty:
        tool.invoke({"code": ""})

    assert [e["loc"] for e in missing.value.errors()] == [("code",), ("source",)]
    assert empty.value.errors()[0]["type"] == "string_too_short"


def test_a_request_the_service_refuses_is_a_result_the_model_can_read(
    service: tuple[str, str],
) -> None:
    base_url, api_key = service
    tool = SandboxCodeTool(service_url=base_url, api_key=api_key)

    message = tool.invoke(
        {
            "type": "tool_call",
            "id": "c1",
            "name": "run_code",
            "args": {"code": "print(1)", "language": "cobol"},
        }
    )

    refused = json.loads(str(message.content))
    assert (refused["status"], refused["error_code"]) == ("not_run", "unknown_language")
    assert "python" in refused["message"]


def test_a_wrong_key_raises(service: tuple[str, str]) -> None:
    base_url, _ = service
    tool = SandboxCodeTool(service_url=base_url, api_key="not-a-key")

    with pytest.raises(Unauthorized):
        tool.invoke({"code": "print(1)"})
    assert "not-a-key" not in repr(tool)
