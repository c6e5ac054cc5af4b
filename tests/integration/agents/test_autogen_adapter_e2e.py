"""AutoGen AgentChat's own CodeExecutorAgent, running its code in the real sandbox service."""

from __future__ import annotations

import pytest

pytest.importorskip("autogen_agentchat")

from autogen_agentchat.agents import CodeExecutorAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.messages import TextMessage
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock

from agent_client.adapters.autogen import SandboxCodeExecutor
from agent_client.service import ExecutionClient

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.docker,
    pytest.mark.redis,
    pytest.mark.filterwarnings("ignore:No approval function set:UserWarning"),
]


async def test_autogen_team_runs_code_in_the_sandbox(service: tuple[str, str]) -> None:
    base_url, api_key = service
    async with (
        ExecutionClient(base_url, api_key) as client,
        SandboxCodeExecutor(client) as executor,
    ):
        agent = CodeExecutorAgent("executor", code_executor=executor)
        team = RoundRobinGroupChat([agent], termination_condition=MaxMessageTermination(2))
        result = await team.run(
            task=TextMessage(
                source="user",
                content="```python\nimport os\nprint(os.getuid() != 0, 6 * 7)\n```",
            )
        )
        session_id = executor.session_id
        assert session_id is not None
    reply = result.messages[-1].to_text()
    assert "True 42" in reply
    async with ExecutionClient(base_url, api_key) as client:
        sessions = {s.id: s.state for s in await client.list_sessions()}
    assert sessions.get(session_id, "deleted") != "active"


async def test_timeout_and_errors_come_back_as_results(service: tuple[str, str]) -> None:
    base_url, api_key = service
    async with (
        ExecutionClient(base_url, api_key) as client,
        SandboxCodeExecutor(client) as executor,
    ):
        failed = await executor.execute_code_blocks(
            [CodeBlock(code="raise SystemExit(3)", language="python")], CancellationToken()
        )
        timed_out = await executor.execute_code_blocks(
            [CodeBlock(code="import time; time.sleep(120)", language="python")],
            CancellationToken(),
        )
    assert failed.exit_code == 3
    assert timed_out.exit_code == 124
    assert "timed out" in timed_out.output
