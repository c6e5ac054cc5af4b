"""The OpenAI Agents SDK's own Agent and Runner, calling our tool, against the real service.

The model is the scripted OpenAI-compatible server on loopback: its scripted tool calls make
the SDK run code in the real sandbox, and its final answers quote the tool output it was sent,
so a final answer holds what the program really printed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import Agent, OpenAIChatCompletionsModel, Runner, UserError, set_tracing_disabled
from openai import AsyncOpenAI

from agent_client.adapters.openai_agents import SandboxFunctionTool
from agent_client.errors import Unauthorized
from agent_client.service import ExecutionClient
from agent_client.service.models import LimitsOverride
from tests.support.scripted_openai import ScriptedOpenAI, call

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.redis]

MODEL = "coder"


@pytest.fixture(autouse=True)
def no_trace_export() -> None:
    """The SDK exports traces to OpenAI by default: no packet may leave this machine."""
    set_tracing_disabled(True)


@pytest.fixture
async def model(llm: ScriptedOpenAI) -> AsyncIterator[OpenAIChatCompletionsModel]:
    client = AsyncOpenAI(base_url=llm.url, api_key="scripted", max_retries=0)
    yield OpenAIChatCompletionsModel(model=MODEL, openai_client=client)
    await client.close()


def quote_tool_output(body: dict[str, Any]) -> str:
    """A scripted final answer: the last tool output the model was sent, verbatim."""
    tool_messages = [m for m in body["messages"] if m.get("role") == "tool"]
    return f"The sandbox said: {tool_messages[-1]['content']}"


def tool_outputs(llm: ScriptedOpenAI) -> list[str]:
    """Every tool output the SDK sent back to the model, in order, without repeats."""
    seen: list[str] = []
    for request in llm.requests_for(MODEL):
        for message in request["messages"]:
            if message.get("role") == "tool" and message["content"] not in seen:
                seen.append(message["content"])
    return seen


def coder(model: OpenAIChatCompletionsModel, tool: SandboxFunctionTool) -> Agent[None]:
    return Agent(name="coder", instructions="Run code to answer.", model=model, tools=[tool])


async def test_agent_runs_code_in_the_sandbox_and_answers_with_its_output(
    service: tuple[str, str], llm: ScriptedOpenAI, model: OpenAIChatCompletionsModel
) -> None:
    base_url, api_key = service
    code = "import os\nprint(os.getuid() != 0, sum(range(10**5)))"
    llm.script(MODEL, [call("run_code", {"code": code, "language": None}), quote_tool_output])
    tool = SandboxFunctionTool(base_url, api_key)

    result = await Runner.run(coder(model, tool), "Sum 0..99999 in the sandbox.")

    assert "True 4999950000" in result.final_output
    [output] = tool_outputs(llm)
    assert json.loads(output) == {
        **json.loads(output),
        "status": "ok",
        "exit_code": 0,
        "stdout": "True 4999950000\n",
    }
    first_request = llm.requests_for(MODEL)[0]
    [schema] = [t["function"] for t in first_request["tools"]]
    assert schema["name"] == "run_code"
    assert schema["parameters"]["required"] == ["code", "language"]


async def test_failing_and_timed_out_programs_are_normal_results(
    service: tuple[str, str], llm: ScriptedOpenAI, model: OpenAIChatCompletionsModel
) -> None:
    base_url, api_key = service
    llm.script(
        MODEL,
        [
            call(
                "run_code",
                {
                    "code": "import sys; print('boom', file=sys.stderr); sys.exit(3)",
                    "language": None,
                },
            ),
            call("run_code", {"code": "import time; time.sleep(60)", "language": "python"}),
            quote_tool_output,
        ],
    )
    tool = SandboxFunctionTool(base_url, api_key, limits=LimitsOverride(wall_time_s=2))

    result = await Runner.run(coder(model, tool), "Try both.")

    failed, timed_out = (json.loads(o) for o in tool_outputs(llm))
    assert (failed["status"], failed["exit_code"], failed["stderr"]) == ("error", 3, "boom\n")
    assert timed_out["status"] == "timeout"
    assert '"status":"timeout"' in result.final_output


async def test_bad_arguments_and_unknown_language_come_back_to_the_model(
    service: tuple[str, str], llm: ScriptedOpenAI, model: OpenAIChatCompletionsModel
) -> None:
    base_url, api_key = service
    llm.script(
        MODEL,
        [
            call("run_code", {"source": "print(1)"}),
            call("run_code", {"code": "print(1)", "language": "cobol"}),
            "gave up",
        ],
    )
    tool = SandboxFunctionTool(base_url, api_key)

    result = await Runner.run(coder(model, tool), "Run it.")

    assert result.final_output == "gave up"
    invalid, unknown = tool_outputs(llm)
    assert invalid.startswith("Invalid arguments for run_code:")
    assert "code: Field required" in invalid
    assert "source: Extra inputs are not permitted" in invalid
    refused = json.loads(unknown)
    assert refused["status"] == "not_run"
    assert refused["error_code"] == "unknown_language"


async def test_session_bound_tool_keeps_files_until_closed(
    service: tuple[str, str], llm: ScriptedOpenAI, model: OpenAIChatCompletionsModel
) -> None:
    base_url, api_key = service
    llm.script(
        MODEL,
        [
            call("run_code", {"code": "echo kept > note.txt", "language": "bash"}),
            call("run_code", {"code": "print(open('note.txt').read())", "language": None}),
            call("run_code", {"code": "cat note.txt", "language": "bash"}),
            quote_tool_output,
        ],
    )
    async with SandboxFunctionTool(base_url, api_key, session=True) as tool:
        result = await Runner.run(coder(model, tool), "Write a note, then read it.")
        sessions = tool.session_ids

    wrote, python_read, bash_read = (json.loads(o) for o in tool_outputs(llm))
    assert wrote["status"] == "ok"
    # One session per language: Python's workspace is not bash's.
    assert python_read["status"] == "error"
    assert "FileNotFoundError" in python_read["stderr"]
    assert bash_read["stdout"] == "kept\n"
    assert "kept" in result.final_output
    assert set(sessions) == {"bash", "python"}
    async with ExecutionClient(base_url, api_key) as client:
        states = {s.id: s.state for s in await client.list_sessions()}
    assert all(states.get(sid, "deleted") != "active" for sid in sessions.values())


async def test_a_wrong_key_stops_the_run(
    service: tuple[str, str], llm: ScriptedOpenAI, model: OpenAIChatCompletionsModel
) -> None:
    base_url, _ = service
    llm.script(MODEL, [call("run_code", {"code": "print(1)", "language": None}), "unreachable"])
    tool = SandboxFunctionTool(base_url, "not-a-key")

    # The SDK wraps what a tool raises in its UserError; ours is the cause.
    with pytest.raises(UserError) as raised:
        await Runner.run(coder(model, tool), "Run it.")
    assert isinstance(raised.value.__cause__, Unauthorized)
    assert llm.remaining(MODEL) == 1
