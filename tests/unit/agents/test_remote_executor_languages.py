"""RemoteExecutor runs every language's blocks in the one Python session, apart from a language
the service says that session's image cannot run (MockTransport fake)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from agent_client.executors import RemoteExecutor
from agent_client.messages import CodeBlock
from agent_client.service import ExecutionClient
from tests.unit.agents.fake_service import KEY, FakeService, error


def submits(service: FakeService) -> list[dict[str, Any]]:
    return [b for m, p, b in service.requests if (m, p) == ("POST", "/v1/executions")]


def sessions_opened(service: FakeService) -> list[str]:
    return [b["language"] for m, p, b in service.requests if (m, p) == ("POST", "/v1/sessions")]


def client_for(service: FakeService) -> ExecutionClient:
    return ExecutionClient(
        "http://sandbox.test", KEY, transport=service.transport(), poll_interval_s=0
    )


async def test_bash_python_and_javascript_blocks_run_in_one_session() -> None:
    service = FakeService()
    blocks = [
        CodeBlock(code="echo a > f", language="bash"),
        CodeBlock(code="print(1)", language="python"),
        CodeBlock(code="console.log(1)", language="js"),
    ]
    async with client_for(service) as client, RemoteExecutor(client) as executor:
        result = await executor.execute_code_blocks(blocks)
        assert list(executor.session_ids) == ["python"]
    assert result.exit_code == 0
    assert sessions_opened(service) == ["python"]
    sent = submits(service)
    assert [body["language"] for body in sent] == ["bash", "python", "javascript"]
    assert len({body["session_id"] for body in sent}) == 1


async def test_a_language_the_python_sessions_image_lacks_gets_a_session_of_its_own() -> None:
    service = FakeService()

    def shell_only_elsewhere(request: httpx.Request) -> httpx.Response | None:
        """The service's answer when the Python session's image has no bash."""
        if (request.method, request.url.path) != ("POST", "/v1/executions"):
            return None
        body = json.loads(request.content)
        session = service.sessions.get(body.get("session_id"), {})
        if body["language"] == "bash" and session.get("language") == "python":
            return error(422, "unknown_language", "its image runs python only", "language")
        return None

    service.on_request = shell_only_elsewhere
    bash = CodeBlock(code="echo hi", language="bash")
    async with client_for(service) as client, RemoteExecutor(client) as executor:
        first = await executor.execute_code_blocks([bash])
        second = await executor.execute_code_blocks([bash])
        sessions = executor.session_ids
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert sessions_opened(service) == ["python", "bash"]
    # Refused once in the Python session; from then on bash goes straight to its own.
    assert [body["session_id"] for body in submits(service)] == [
        sessions["python"],
        sessions["bash"],
        sessions["bash"],
    ]
