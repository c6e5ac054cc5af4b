"""RemoteExecutor over the contract (MockTransport fake): sessions, timeouts, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from agent_client.cancellation import CancellationToken
from agent_client.errors import SessionBusy, SessionEnded
from agent_client.executors import RemoteExecutor
from agent_client.executors.remote import SESSION_RENEWED_NOTICE
from agent_client.messages import CodeBlock
from agent_client.service import ExecutionClient
from tests.unit.agents.fake_service import KEY, FakeService, error


def py(code: str) -> CodeBlock:
    return CodeBlock(code=code, language="python")


def submits(service: FakeService) -> list[dict[str, Any]]:
    return [b for m, p, b in service.requests if (m, p) == ("POST", "/v1/executions")]


def session_creations(service: FakeService) -> int:
    return len([r for r in service.requests if r[:2] == ("POST", "/v1/sessions")])


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
    assert {b["session_id"] for b in submits(service)} == {session_id}
    assert service.sessions[str(session_id)]["state"] == "deleted"
    assert service.active_sessions() == []


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
    assert service.active_sessions() == []


async def test_a_busy_session_is_retried_in_the_same_session() -> None:
    service = FakeService(busy_responses=2)
    async with client_for(service) as client, RemoteExecutor(client) as executor:
        result = await executor.execute_code_blocks([py("print(1)")])
        session_id = executor.session_id
    assert result.exit_code == 0
    assert not result.output.startswith(SESSION_RENEWED_NOTICE)
    assert [b["session_id"] for b in submits(service)] == [session_id] * 3
    assert session_creations(service) == 1


@pytest.mark.parametrize(
    ("status", "code"),
    [(429, "quota_exceeded"), (503, "overloaded"), (503, "store_unavailable")],
)
async def test_transient_refusals_are_retried_in_the_same_session(status: int, code: str) -> None:
    refusals = [error(status, code, "try again shortly", **{"Retry-After": "0.01"})]

    def once(request: httpx.Request) -> httpx.Response | None:
        if (request.method, request.url.path) == ("POST", "/v1/executions") and refusals:
            return refusals.pop()
        return None

    service = FakeService(on_request=once)
    async with client_for(service) as client, RemoteExecutor(client) as executor:
        result = await executor.execute_code_blocks([py("print(1)")])
    assert result.exit_code == 0
    assert not result.output.startswith(SESSION_RENEWED_NOTICE)
    assert len(submits(service)) == 2
    assert session_creations(service) == 1


async def test_a_session_busy_past_max_attempts_raises_without_renewing() -> None:
    service = FakeService(busy_responses=10)
    async with client_for(service) as client, RemoteExecutor(client, max_attempts=3) as executor:
        with pytest.raises(SessionBusy):
            await executor.execute_code_blocks([py("print(1)")])
    assert len(submits(service)) == 3
    assert session_creations(service) == 1


def end_by_expiry(service: FakeService, session_id: str) -> None:
    service.expire(session_id)


def end_by_deletion(service: FakeService, session_id: str) -> None:
    service.sessions[session_id]["state"] = "deleted"


def end_by_forgetting(service: FakeService, session_id: str) -> None:
    del service.sessions[session_id]  # the record outlived its TTL: the service answers 404


@pytest.mark.parametrize("end", [end_by_expiry, end_by_deletion, end_by_forgetting])
async def test_an_ended_session_is_renewed_and_the_output_says_files_are_gone(
    end: Callable[[FakeService, str], None],
) -> None:
    service = FakeService(outcomes={"print(2)": {"stdout": "2\n"}})
    async with client_for(service) as client:
        executor = RemoteExecutor(client, max_attempts=1)
        first = await executor.execute_code_blocks([py("open('a', 'w').write('1')")])
        old = str(executor.session_id)
        end(service, old)  # the model thought for longer than the idle timeout
        second = await executor.execute_code_blocks([py("print(2)")])
        new = executor.session_id
        third = await executor.execute_code_blocks([py("print(2)")])
        await executor.stop()
    assert first.exit_code == 0
    assert second.exit_code == 0
    assert second.output == f"{SESSION_RENEWED_NOTICE}\n2"
    assert "files written by earlier code blocks are gone" in second.output.lower()
    assert third.output == "2"  # told once, in the block that moved
    assert new is not None
    assert new != old
    assert [b["session_id"] for b in submits(service)] == [old, old, new, new]
    assert session_creations(service) == 2
    assert service.active_sessions() == []


async def test_a_session_that_ends_after_admission_is_renewed() -> None:
    service = FakeService(sessions_end_before_run=1, outcomes={"print(1)": {"stdout": "1\n"}})
    async with client_for(service) as client, RemoteExecutor(client) as executor:
        old = executor.session_id
        result = await executor.execute_code_blocks([py("print(1)")])
        new = executor.session_id
    assert result.exit_code == 0
    assert result.output == f"{SESSION_RENEWED_NOTICE}\n1"
    assert old != new
    assert [b["session_id"] for b in submits(service)] == [old, new]


async def test_a_session_is_renewed_at_most_once_per_block() -> None:
    def always_ended(request: httpx.Request) -> httpx.Response | None:
        if (request.method, request.url.path) == ("POST", "/v1/executions"):
            return error(409, "session_ended", "session is expired; open a new one", "session_id")
        return None

    service = FakeService(on_request=always_ended)
    async with client_for(service) as client, RemoteExecutor(client) as executor:
        with pytest.raises(SessionEnded) as caught:
            await executor.execute_code_blocks([py("print(1)")])
    assert caught.value.status_code == 409
    assert len(submits(service)) == 2
    assert session_creations(service) == 2


async def test_a_second_end_after_admission_is_reported_not_retried() -> None:
    service = FakeService(sessions_end_before_run=2)
    async with client_for(service) as client, RemoteExecutor(client) as executor:
        result = await executor.execute_code_blocks([py("print(1)")])
    assert result.exit_code == 1
    assert result.output.startswith(SESSION_RENEWED_NOTICE)
    assert "(session_ended)" in result.output
    assert len(submits(service)) == 2


async def test_unsupported_language_is_a_result() -> None:
    async with client_for(FakeService()) as client, RemoteExecutor(client) as executor:
        result = await executor.execute_code_blocks([CodeBlock(code="x", language="cobol")])
    assert result.exit_code == 1
    assert "not supported" in result.output
