"""RemoteExecutor over the contract (MockTransport fake): sessions, timeouts, cancellation."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from agent_client.cancellation import CancellationToken
from agent_client.executors import RemoteExecutor
from agent_client.messages import CodeBlock
from agent_client.service import ExecutionClient
from tests.unit.agents.fake_service import KEY, FakeService


def py(code: str) -> CodeBlock:
    return CodeBlock(code=code, language="python")


def client_for(service: FakeService) -> ExecutionClient:
    return ExecutionClient(
        "http://sandbox.test", KEY, transport=service.transport(), poll_interval_s=0
    )


async def test_blocks_share_one_session_which_is_deleted_on_stop() -> None:
    service = FakeService(outcomes={"print(1)": {"stdout": "1\n"}, "print(2)": {"stdout": "2\n"}})
    async with client_for(service) as client:
        executor = RemoteExecutor(client)
        result = await executor.execute_code_blocks([py("print(1)"), py("print(2)")])
        session_id = executor.session_id
        assert session_id in service.sessions
        await executor.stop()
    assert result.exit_code == 0
    assert result.output == "1\n2"
    submitted = [b for m, p, b in service.requests if (m, p) == ("POST", "/v1/executions")]
    assert {b["session_id"] for b in submitted} == {session_id}
    assert service.sessions == {}


async def test_stops_at_the_first_failing_block_with_stderr_in_output() -> None:
    service = FakeService(
        outcomes={"1/0": {"status": "error", "exit_code": 1, "stderr": "ZeroDivisionError"}}
    )
    async with client_for(service) as client, RemoteExecutor(client) as executor:
        result = await executor.execute_code_blocks([py("1/0"), py("print('never')")])
    assert result.exit_code == 1
    assert "ZeroDivisionError" in result.output
    assert len([r for r in service.requests if r[:2] == ("POST", "/v1/executions")]) == 1


async def test_sandbox_timeout_is_exit_code_124_with_a_message() -> None:
    service = FakeService(
        outcomes={"sleep": {"status": "timeout", "exit_code": None, "wall_time_s": 5}}
    )
    async with client_for(service) as client, RemoteExecutor(client) as executor:
        result = await executor.execute_code_blocks([py("import time; time.sleep(99)")])
    assert result.exit_code == 124
    assert "timed out after 5s" in result.output


async def test_no_result_in_time_cancels_and_reports_124() -> None:
    service = FakeService(never_finish=True)
    async with (
        client_for(service) as client,
        RemoteExecutor(client, result_wait_s=0.05) as executor,
    ):
        result = await executor.execute_code_blocks([py("while True: pass")])
    assert result.exit_code == 124
    assert len(service.cancelled) == 1


async def test_cancellation_cancels_the_remote_execution() -> None:
    submitted = asyncio.Event()

    def note_submit(request: httpx.Request) -> None:
        if (request.method, request.url.path) == ("POST", "/v1/executions"):
            submitted.set()

    service = FakeService(never_finish=True, on_request=note_submit)
    token = CancellationToken()
    async with client_for(service) as client, RemoteExecutor(client) as executor:
        run = asyncio.ensure_future(executor.execute_code_blocks([py("while True: pass")], token))
        await submitted.wait()
        token.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    assert len(service.cancelled) == 1
    assert service.sessions == {}


async def test_busy_session_is_retried_and_expired_session_renewed() -> None:
    service = FakeService(busy_responses=2)
    async with client_for(service) as client:
        executor = RemoteExecutor(client)
        assert (await executor.execute_code_blocks([py("print(1)")])).exit_code == 0
        service.sessions.clear()  # the service expired it
        assert (await executor.execute_code_blocks([py("print(2)")])).exit_code == 0
        assert executor.session_id in service.sessions
        await executor.stop()


async def test_unsupported_language_is_a_result() -> None:
    async with client_for(FakeService()) as client, RemoteExecutor(client) as executor:
        result = await executor.execute_code_blocks([CodeBlock(code="x", language="cobol")])
    assert result.exit_code == 1
    assert "not supported" in result.output
