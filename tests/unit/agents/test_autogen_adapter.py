"""AutoGen's own CodeExecutorAgent running its code through SandboxCodeExecutor (fake service)."""

from __future__ import annotations

import pytest

pytest.importorskip("autogen_agentchat")

from autogen_agentchat.agents import CodeExecutorAgent as AutogenCodeExecutorAgent
from autogen_agentchat.messages import TextMessage as AutogenTextMessage
from autogen_core import CancellationToken as AutogenCancellationToken
from autogen_core.code_executor import CodeBlock as AutogenCodeBlock

from agent_client.adapters.autogen import SandboxCodeExecutor
from agent_client.service import ExecutionClient
from tests.unit.agents.fake_service import KEY, FakeService


def client_for(service: FakeService) -> ExecutionClient:
    return ExecutionClient(
        "http://sandbox.test", KEY, transport=service.transport(), poll_interval_s=0
    )


@pytest.mark.filterwarnings("ignore:No approval function set:UserWarning")
async def test_autogen_agent_runs_code_in_the_sandbox_session() -> None:
    service = FakeService(outcomes={"print('hi')": {"stdout": "hi\n"}})
    async with client_for(service) as client, SandboxCodeExecutor(client) as executor:
        agent = AutogenCodeExecutorAgent("executor", code_executor=executor)
        response = await agent.on_messages(
            [AutogenTextMessage(source="coder", content="```python\nprint('hi')\n```")],
            AutogenCancellationToken(),
        )
        session_id = executor.session_id
    assert "hi" in response.chat_message.to_text()
    submitted = [b for m, p, b in service.requests if (m, p) == ("POST", "/v1/executions")]
    assert submitted[0]["session_id"] == session_id
    assert service.sessions[str(session_id)]["state"] == "deleted"  # when the context ended


async def test_timeouts_and_service_errors_are_results_not_exceptions() -> None:
    service = FakeService(outcomes={"sleep": {"status": "timeout", "exit_code": None}})
    async with client_for(service) as client, SandboxCodeExecutor(client) as executor:
        timed_out = await executor.execute_code_blocks(
            [AutogenCodeBlock(code="sleep()", language="python")], AutogenCancellationToken()
        )
        service.on_request = lambda _: __import__("httpx").Response(
            503, json={"error": {"code": "sandbox_error", "message": "engine down", "field": None}}
        )
        failed = await executor.execute_code_blocks(
            [AutogenCodeBlock(code="print(1)", language="python")], AutogenCancellationToken()
        )
        service.on_request = None
    assert timed_out.exit_code == 124
    assert failed.exit_code == 1
    assert "engine down" in failed.output
