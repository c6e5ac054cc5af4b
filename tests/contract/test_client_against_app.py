"""The real ExecutionClient against the real app (ASGITransport, real Redis, no worker).

The unit tests of the client run against a hand-written fake; these pin the same calls to what
the service really answers, so a fake that drifts (404 where the service says 409) is caught.
Without a worker, executions stay queued and session operations time out at the API's bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

import httpx
import pytest

from agent_client.errors import (
    InvalidRequest,
    LimitAboveCeiling,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    PolicyNotAllowed,
    QuotaExceeded,
    ServiceError,
    SessionBusy,
    SessionEnded,
    Unauthorized,
    UnknownLanguage,
    UnsafePath,
    ValidationFailed,
    WaitTimeout,
)
from agent_client.service import (
    ExecutionClient,
    ExecutionCreate,
    InputFile,
    ResultEvent,
    StateEvent,
)
from agent_client.service.models import LimitsOverride
from executor_service.api.app import create_app
from executor_service.jobs.session import SessionState
from executor_service.jobs.store import Stores
from executor_service.settings import Settings
from tests.contract.conftest import Tenants, session_record

pytestmark = pytest.mark.redis

ErrorT = TypeVar("ErrorT", bound=ServiceError)
ClientFor = Callable[[dict[str, str]], AbstractAsyncContextManager[ExecutionClient]]


@pytest.fixture
def client_for(contract_settings: Settings, store: Stores) -> ClientFor:
    """An ExecutionClient for one tenant's headers, talking to one in-process app."""
    app = create_app(contract_settings, stores=store)

    @asynccontextmanager
    async def open_client(headers: dict[str, str]) -> AsyncIterator[ExecutionClient]:
        key = headers["Authorization"].removeprefix("Bearer ")
        transport = httpx.ASGITransport(app=app)
        async with ExecutionClient(
            "http://service", key, transport=transport, poll_interval_s=0.05
        ) as client:
            yield client

    return open_client


def refused(
    caught: pytest.ExceptionInfo[ErrorT], status: int, code: str, field: str | None = None
) -> ErrorT:
    """The exact typed error, with the wire's status, code and field carried over."""
    error = caught.value
    assert error.status_code == status, error
    assert error.code == code
    assert error.field == field
    assert error.message
    return error


async def test_submit_get_list_and_cancel_parse_into_the_models(
    client_for: ClientFor, tenants: Tenants
) -> None:
    async with client_for(tenants.acme) as client:
        submitted = await client.submit("python", "print(1)")
        fetched = await client.get(submitted.id)
        listed = await client.list(limit=5)
        cancelled = await client.cancel(submitted.id)
        again = await client.cancel(submitted.id)
    assert submitted.id.startswith("ex_")
    assert submitted.state == "queued"
    assert submitted.language == "python"
    assert submitted.policy == "default"
    assert submitted.session_id is None
    assert submitted.result is None
    assert submitted.error is None
    assert not submitted.is_final
    assert fetched == submitted
    assert [e.id for e in listed] == [submitted.id]
    assert cancelled.state == "cancelled"
    assert cancelled.is_final
    assert cancelled.finished_at is not None
    assert again.state == "cancelled"


async def test_batch_keeps_order_and_a_waited_submit_answers_when_the_bound_passes(
    client_for: ClientFor, tenants: Tenants
) -> None:
    async with client_for(tenants.acme) as client:
        made = await client.batch(
            [ExecutionCreate(code="print(1)"), ExecutionCreate(language="bash", code="echo 2")]
        )
        held = await client.submit("python", "print(3)", wait=True, wait_timeout_s=0.3)
        with pytest.raises(WaitTimeout) as caught:
            await client.wait(held.id, timeout_s=0.2)
    assert [(e.language, e.state) for e in made] == [("python", "queued"), ("bash", "queued")]
    assert held.state == "queued"  # no worker: the service answered 202 at its bound
    assert caught.value.execution_id == held.id


async def test_stream_of_a_cancelled_execution_ends_with_its_result(
    client_for: ClientFor, tenants: Tenants
) -> None:
    async with client_for(tenants.acme) as client:
        submitted = await client.submit("python", "print(1)")
        await client.cancel(submitted.id)
        events = [event async for event in client.stream(submitted.id)]
    assert [e.state for e in events if isinstance(e, StateEvent)] == ["queued", "cancelled"]
    last = events[-1]
    assert isinstance(last, ResultEvent)
    assert last.execution.id == submitted.id
    assert last.execution.state == "cancelled"


async def test_catalogue_parses(client_for: ClientFor, tenants: Tenants) -> None:
    async with client_for(tenants.acme) as client:
        policies = await client.policies()
        runtimes = await client.runtimes()
    assert "default" in {p.name for p in policies}
    assert "python" in {r.language for r in runtimes}


async def test_a_wrong_key_is_unauthorized(client_for: ClientFor) -> None:
    async with client_for({"Authorization": "Bearer not-a-key"}) as client:
        with pytest.raises(Unauthorized) as caught:
            await client.list()
    refused(caught, 401, "unauthorized")


async def test_another_tenants_ids_are_not_found(
    client_for: ClientFor, tenants: Tenants, store: Stores
) -> None:
    async with client_for(tenants.acme) as acme:
        ident = (await acme.submit("python", "print(1)")).id
    session = session_record(store, "acme", "se_acme")
    async with client_for(tenants.other) as other:
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: other.get(ident),
            lambda: other.cancel(ident),
            lambda: other.get_session(session),
            lambda: other.delete_session(session),
            lambda: other.list_files(session),
            lambda: other.submit("python", "print(1)", policy="strict", session_id=session),
        ]
        for call in calls:
            with pytest.raises(NotFound) as caught:
                await call()
            assert type(caught.value) is NotFound
            assert caught.value.status_code == 404
        with pytest.raises(NotFound):
            _ = [event async for event in other.stream(ident)]
        assert await other.list() == []
        assert await other.list_sessions() == []
    assert store.executions.get(ident).state == "queued"


async def test_a_busy_session_is_session_busy(
    client_for: ClientFor, tenants: Tenants, store: Stores
) -> None:
    session = session_record(store, "acme", "se_busy")
    async with client_for(tenants.acme) as client:
        first = await client.submit("python", "print(1)", session_id=session)
        with pytest.raises(SessionBusy) as caught:
            await client.submit("python", "print(2)", session_id=session)
        await client.cancel(first.id)
        after = await client.submit("python", "print(3)", session_id=session)
    assert first.session_id == session
    refused(caught, 409, "session_busy", "session_id")
    assert after.session_id == session


@pytest.mark.parametrize("state", [SessionState.EXPIRED, SessionState.DELETED])
async def test_an_ended_session_is_session_ended_everywhere(
    client_for: ClientFor, tenants: Tenants, store: Stores, state: SessionState
) -> None:
    session = session_record(store, "acme", f"se_{state.value}", state)
    async with client_for(tenants.acme) as client:
        with pytest.raises(SessionEnded) as submitted:
            await client.submit("python", "print(1)", session_id=session, wait=True)
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: client.list_files(session),
            lambda: client.download(session, "a.txt"),
            lambda: client.upload(session, "a.txt", b"x"),
        ]
        for call in calls:
            with pytest.raises(SessionEnded) as caught:
                await call()
            refused(caught, 409, "session_ended")
        seen = await client.get_session(session)
        await client.delete_session(session)  # deleting an ended session is a no-op
        listed = await client.list_sessions()
    error = refused(submitted, 409, "session_ended", "session_id")
    assert state.value in error.message
    assert seen.id == session
    assert seen.state == state.value
    assert seen.expires_at is not None
    assert [(s.id, s.state) for s in listed] == [(session, state.value)]
    assert store.executions.active_count("acme") == 0


async def test_sizes_over_the_policy_are_payload_too_large(
    client_for: ClientFor, tenants: Tenants, contract_settings: Settings
) -> None:
    async with client_for(tenants.other) as strict:
        with pytest.raises(PayloadTooLarge) as code:
            await strict.submit("python", "#" * 70_000, policy="strict")
    refused(code, 413, "payload_too_large", "code")
    async with client_for(tenants.acme) as client:
        with pytest.raises(PayloadTooLarge) as body:
            await client.submit(
                "python", "print(1)", stdin="x" * contract_settings.max_request_bytes
            )
    refused(body, 413, "payload_too_large")


async def test_malformed_fields_are_validation_failed_with_the_field(
    client_for: ClientFor, tenants: Tenants
) -> None:
    async with client_for(tenants.acme) as client:
        with pytest.raises(ValidationFailed) as wait:
            await client.submit("python", "print(1)", wait=True, wait_timeout_s=-1)
        with pytest.raises(ValidationFailed) as content:
            await client.submit(
                "python", "print(1)", files=[InputFile(path="a", content="not base64!")]
            )
        with pytest.raises(ValidationFailed) as limit:
            await client.list(limit=0)
        with pytest.raises(ValidationFailed) as idle:
            await client.create_session(idle_timeout_s=-1)
    refused(wait, 422, "validation_error", "wait_timeout_s")
    refused(content, 422, "validation_error", "files.0.content")
    refused(limit, 422, "validation_error", "limit")
    refused(idle, 422, "validation_error", "idle_timeout_s")


async def test_every_limit_the_service_takes_can_be_tightened_from_the_client(
    client_for: ClientFor, tenants: Tenants, store: Stores
) -> None:
    lower = LimitsOverride(
        wall_time_s=5,
        cpu_time_s=5,
        cpus=0.5,
        memory_mb=128,
        pids=32,
        nofile=64,
        output_bytes=65_536,
        workspace_mb=32,
        tmp_mb=8,
    )
    assert lower.model_fields_set == set(LimitsOverride.model_fields)  # none left out
    async with client_for(tenants.acme) as client:
        execution = await client.submit("python", "print(1)", limits=lower)
        with pytest.raises(ValidationFailed) as zero:
            await client.submit("python", "print(1)", limits=LimitsOverride(tmp_mb=0))
    limits = store.executions.get(execution.id).request.limits
    assert limits is not None
    assert limits.model_dump() == lower.model_dump()
    refused(zero, 422, "validation_error", "limits.tmp_mb")


async def test_refusals_by_policy_are_typed(client_for: ClientFor, tenants: Tenants) -> None:
    async with client_for(tenants.acme) as client:
        with pytest.raises(LimitAboveCeiling) as memory:
            await client.submit("python", "print(1)", limits=LimitsOverride(memory_mb=100_000))
        with pytest.raises(LimitAboveCeiling) as idle:
            await client.create_session(idle_timeout_s=10**9)
        with pytest.raises(UnknownLanguage) as cobol:
            await client.submit("cobol", "x")
        with pytest.raises(UnsafePath) as path:
            await client.submit("python", "print(1)", files={"../etc/passwd": b"x"})
        with pytest.raises(InvalidRequest) as policy:
            await client.submit("python", "print(1)", policy="nope")
    async with client_for(tenants.other) as other:
        with pytest.raises(PolicyNotAllowed) as forbidden:
            await other.submit("python", "print(1)", policy="default")
    refused(memory, 422, "limit_above_ceiling", "limits.memory_mb")
    refused(idle, 422, "limit_above_ceiling", "idle_timeout_s")
    refused(cobol, 422, "unknown_language", "language")
    refused(path, 422, "unsafe_path", "files.0.path")
    assert type(policy.value) is InvalidRequest
    refused(policy, 422, "invalid_request", "policy")
    refused(forbidden, 403, "policy_not_allowed", "policy")


async def test_a_full_quota_is_quota_exceeded_with_retry_after(
    client_for: ClientFor, tenants: Tenants
) -> None:
    async with client_for(tenants.acme) as client:
        for _ in range(3):
            await client.submit("python", "print(1)")
        with pytest.raises(QuotaExceeded) as caught:
            await client.submit("python", "print(1)")
    error = refused(caught, 429, "quota_exceeded")
    assert error.retry_after_s is not None
    assert error.retry_after_s > 0


async def test_a_session_no_worker_starts_is_overloaded_with_retry_after(
    client_for: ClientFor, tenants: Tenants
) -> None:
    async with client_for(tenants.acme) as client:
        with pytest.raises(Overloaded) as caught:
            await client.create_session()
        listed = await client.list_sessions()
    error = refused(caught, 503, "overloaded")
    assert error.retry_after_s is not None
    assert [s.state for s in listed] == ["deleted"]
