"""Teams end to end: real openai client to a scripted server, real code in the real sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agent_client.agents import AssistantAgent, CodeExecutorAgent
from agent_client.cancellation import CancellationToken
from agent_client.conditions import (
    HandoffTermination,
    MaxMessageTermination,
    TextMentionTermination,
)
from agent_client.executors import RemoteExecutor
from agent_client.messages import (
    CodeExecutionEvent,
    HandoffMessage,
    TextMessage,
    ToolCallExecutionEvent,
)
from agent_client.models import OpenAIModelClient
from agent_client.service import ExecutionClient
from agent_client.teams import SelectorGroupChat, Swarm, planner_coder_reviewer
from tests.support.scripted_openai import ScriptedOpenAI, call

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.redis]

BROKEN = """Here is my solution:
```python
def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]

assert median([1, 2, 3, 4]) == 2.5, median([1, 2, 3, 4])
print("median ok")
```"""

FIXED = """Fixed the even case:
```python
def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2 == 0:
        return (ordered[mid - 1] + ordered[mid]) / 2
    return ordered[mid]

assert median([1, 2, 3, 4]) == 2.5
assert median([3, 1, 2]) == 2
print("median ok")
```"""


@pytest.fixture
async def sandbox(service: tuple[str, str]) -> AsyncIterator[ExecutionClient]:
    base_url, api_key = service
    async with ExecutionClient(base_url, api_key, poll_interval_s=0.1) as client:
        yield client


def model(llm: ScriptedOpenAI, name: str) -> OpenAIModelClient:
    return OpenAIModelClient(model=name, base_url=llm.url, api_key="k", max_retries=0, timeout_s=30)


async def test_planner_coder_reviewer_fails_then_fixes_then_approves(
    llm: ScriptedOpenAI, sandbox: ExecutionClient
) -> None:
    llm.script("planner", ["1. write median()\n2. assert the even and odd cases"])
    llm.script("coder", [BROKEN, FIXED])

    def review(body: dict[str, object]) -> str:
        seen = str(body["messages"])
        return (
            "APPROVE"
            if "succeeded with exit code 0" in seen.split("[coder]")[-1]
            else ("REVISE: the run failed with an AssertionError for an even-length list.")
        )

    llm.script("reviewer", [review, review])
    clients = {role: model(llm, role) for role in ("planner", "coder", "reviewer")}
    executor = RemoteExecutor(sandbox)
    team = planner_coder_reviewer(clients, executor)  # type: ignore[arg-type]
    result = await team.run("Write median(values) for a list of numbers, with tests.")

    runs = [m for m in result.messages if isinstance(m, CodeExecutionEvent)]
    assert [r.exit_code for r in runs] == [1, 0]
    assert "Traceback (most recent call last)" in runs[0].output
    assert "AssertionError: 3" in runs[0].output
    assert "median ok" in runs[1].output
    reviews = [
        m.to_text()
        for m in result.messages
        if m.source == "reviewer" and isinstance(m, TextMessage)
    ]
    assert reviews[0].startswith("REVISE")
    assert reviews[-1] == "APPROVE"
    assert result.stop_reason == "reviewer approved a run that exited with code 0."
    # The coder's second request carried the real traceback, labelled as the executor's.
    second = llm.requests_for("coder")[1]["messages"]
    assert any(str(m["content"]).startswith("[executor]: Execution FAILED") for m in second)
    assert executor.session_id is None  # the run's session was closed
    assert all(llm.remaining(role) == 0 for role in clients)
    for client in clients.values():
        await client.close()


async def test_files_persist_between_blocks_in_the_run_session(
    llm: ScriptedOpenAI, sandbox: ExecutionClient
) -> None:
    writer = AssistantAgent("writer", model(llm, "writer"))
    llm.script(
        "writer",
        [
            "```python\nopen('state.txt', 'w').write('42')\nprint('saved')\n```",
            "```python\nprint(open('state.txt').read(), 'read back')\n```",
            '```bash\necho "bash says $((6 * 7))"\n```',
        ],
    )
    executor = RemoteExecutor(sandbox)
    runner = CodeExecutorAgent("executor", executor)
    team = SelectorGroupChat(
        [writer, runner],
        selector_func=lambda thread: "executor" if thread[-1].source == "writer" else "writer",
        termination_condition=MaxMessageTermination(7),
    )
    result = await team.run("save, read back, then use bash")
    runs = [m for m in result.messages if isinstance(m, CodeExecutionEvent)]
    assert [r.exit_code for r in runs] == [0, 0, 0]
    assert "42 read back" in runs[1].output
    assert runs[2].output.strip() == "bash says 42"
    assert executor.session_ids == {}  # every session of the run was deleted
    listed = {s.id: s.state for s in await sandbox.list_sessions()}
    assert "active" not in listed.values()


async def test_selector_team_picks_speakers_with_a_model(
    llm: ScriptedOpenAI, sandbox: ExecutionClient
) -> None:
    llm.script("selector", ["coder", "I think executor should go", "critic"])
    llm.script("coder", ["```python\nprint(sum(range(10)))\n```"])
    llm.script("critic", ["The output 45 is right. DONE"])
    team = SelectorGroupChat(
        [
            AssistantAgent("coder", model(llm, "coder"), description="writes Python"),
            CodeExecutorAgent("executor", RemoteExecutor(sandbox), description="runs code"),
            AssistantAgent("critic", model(llm, "critic"), description="checks results"),
        ],
        model(llm, "selector"),
        termination_condition=TextMentionTermination("DONE", sources=["critic"]),
    )
    result = await team.run("Sum 0..9 in Python. Say DONE when checked.")
    chat = [m for m in result.messages if isinstance(m, TextMessage | CodeExecutionEvent)]
    assert [m.source for m in chat] == ["user", "coder", "executor", "critic"]
    execution = chat[2]
    assert isinstance(execution, CodeExecutionEvent)
    assert execution.output.strip() == "45"
    assert result.stop_reason is not None
    assert "critic" in result.stop_reason


async def test_swarm_hands_off_and_runs_code_through_a_tool(
    llm: ScriptedOpenAI, sandbox: ExecutionClient
) -> None:
    async def run_python(code: str) -> str:
        """Run Python code in the sandbox and return what it printed.

        Args:
            code: a complete Python program.
        """
        execution = await sandbox.run("python", code, timeout_s=60)
        result = execution.result
        if result is None:
            return f"failed: {execution.error}"
        return f"exit {result.exit_code}\n{result.stdout}{result.stderr}"

    llm.script("triage", [call("transfer_to_analyst", content="An analyst will compute that.")])
    llm.script(
        "analyst",
        [
            call("run_python", {"code": "import math\nprint(math.factorial(10))"}),
            call("transfer_to_user"),
        ],
    )
    triage = AssistantAgent("triage", model(llm, "triage"), handoffs=["analyst"])
    analyst = AssistantAgent(
        "analyst", model(llm, "analyst"), tools=[run_python], handoffs=["user", "triage"]
    )
    team = Swarm([triage, analyst], termination_condition=HandoffTermination("user"))
    result = await team.run("What is 10 factorial?")

    handoffs = [(m.source, m.target) for m in result.messages if isinstance(m, HandoffMessage)]
    assert handoffs == [("triage", "analyst"), ("analyst", "user")]
    tool_results = [
        r.content
        for m in result.messages
        if isinstance(m, ToolCallExecutionEvent)
        for r in m.content
        if r.name == "run_python"
    ]
    assert tool_results == ["exit 0\n3628800\n"]
    # The analyst's first request offered both its tool and its handoffs.
    offered = {t["function"]["name"] for t in llm.requests_for("analyst")[0]["tools"]}
    assert offered == {"run_python", "transfer_to_user", "transfer_to_triage"}


async def test_cancelling_the_team_cancels_the_remote_execution(
    llm: ScriptedOpenAI, sandbox: ExecutionClient
) -> None:
    llm.script(
        "coder", ["```python\nimport time\nprint('start', flush=True)\ntime.sleep(600)\n```"]
    )
    executor = RemoteExecutor(sandbox)
    team = SelectorGroupChat(
        [AssistantAgent("coder", model(llm, "coder")), CodeExecutorAgent("executor", executor)],
        selector_func=lambda thread: "executor" if thread[-1].source == "coder" else "coder",
        termination_condition=MaxMessageTermination(5),
    )
    token = CancellationToken()
    run = asyncio.ensure_future(team.run("sleep a long time", cancellation=token))
    running = None
    for _ in range(600):
        listed = await sandbox.list(limit=5)
        running = next((e for e in listed if e.state == "running"), None)
        if running is not None:
            break
        await asyncio.sleep(0.1)
    assert running is not None, "the execution never started"
    token.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    final = await sandbox.wait(running.id, timeout_s=60)
    assert final.state == "cancelled"
    assert executor.session_id is None
