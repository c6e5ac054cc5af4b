"""ExecutionClient against the wire contract, over httpx.MockTransport (no network, no patching)."""

from __future__ import annotations

import httpx
import pytest

from agent_client.errors import (
    InvalidResponse,
    NotFound,
    QuotaExceeded,
    ServiceError,
    ServiceUnavailable,
    SessionBusy,
    SessionEnded,
    Unauthorized,
    ValidationFailed,
    WaitTimeout,
)
from agent_client.service import (
    ExecutionClient,
    ExecutionCreate,
    OutputEvent,
    ResultEvent,
    StateEvent,
)
from tests.unit.agents.fake_service import KEY, FakeService, error


def client_for(service: FakeService, key: str = KEY) -> ExecutionClient:
    return ExecutionClient(
        "http://sandbox.test", key, transport=service.transport(), poll_interval_s=0
    )


async def test_run_returns_the_final_execution_with_its_result() -> None:
    service = FakeService(
        outcomes={"boom": {"status": "error", "exit_code": 1, "stderr": "Traceback"}}
    )
    async with client_for(service) as client:
        ok = await client.run("python", "print(1)")
        failed = await client.run("python", "boom()")
    assert ok.state == "finished"
    assert ok.result is not None
    assert ok.result.exit_code == 0
    assert failed.result is not None
    assert failed.result.status == "error"
    assert failed.result.stderr == "Traceback"
    method, path, body = service.requests[0]
    assert (method, path) == ("POST", "/v1/executions")
    assert body["wait"] is True
    assert body["code"] == "print(1)"
    assert "session_id" not in body  # None fields are left out, not sent as null


async def test_run_polls_until_final_when_the_wait_ends_first() -> None:
    service = FakeService(polls_before_final=3)
    async with client_for(service) as client:
        execution = await client.run("python", "print(1)")
    assert execution.state == "finished"
    gets = [r for r in service.requests if r[0] == "GET"]
    assert len(gets) == 4


async def test_wait_raises_wait_timeout_when_never_final() -> None:
    service = FakeService(never_finish=True)
    async with client_for(service) as client:
        execution = await client.submit("python", "while True: pass")
        with pytest.raises(WaitTimeout) as caught:
            await client.wait(execution.id, timeout_s=0.05)
    assert caught.value.execution_id == execution.id


async def test_files_are_sent_as_base64() -> None:
    service = FakeService()
    async with client_for(service) as client:
        await client.submit("python", "print(open('a.txt').read())", files={"a.txt": b"hello"})
    body = service.requests[0][2]
    assert body["files"] == [{"path": "a.txt", "content": "aGVsbG8="}]


@pytest.mark.parametrize(
    ("status", "code", "expected", "field"),
    [
        (401, "unauthorized", Unauthorized, None),
        (404, "not_found", NotFound, None),
        (409, "session_busy", SessionBusy, None),
        (409, "session_ended", SessionEnded, "session_id"),
        (422, "validation_error", ValidationFailed, "limits.memory_mb"),
        (418, "brand_new_code", ServiceError, None),
    ],
)
async def test_error_shape_maps_to_typed_errors(
    status: int, code: str, expected: type[ServiceError], field: str | None
) -> None:
    service = FakeService(on_request=lambda _: error(status, code, "nope", field))
    async with client_for(service) as client:
        with pytest.raises(expected) as caught:
            await client.get("ex_1")
    assert type(caught.value) is expected
    assert caught.value.code == code
    assert caught.value.status_code == status
    assert caught.value.field == field
    assert caught.value.message == "nope"


async def test_quota_exceeded_carries_retry_after() -> None:
    service = FakeService(
        on_request=lambda _: error(429, "quota_exceeded", "full", **{"Retry-After": "7"})
    )
    async with client_for(service) as client:
        with pytest.raises(QuotaExceeded) as caught:
            await client.submit("python", "print(1)")
    assert caught.value.retry_after_s == 7


async def test_wrong_key_is_unauthorized() -> None:
    async with client_for(FakeService(), key="wrong") as client:
        with pytest.raises(Unauthorized):
            await client.list()


async def test_non_contract_error_body_is_invalid_response() -> None:
    service = FakeService(on_request=lambda _: httpx.Response(502, text="<html>bad gateway</html>"))
    async with client_for(service) as client:
        with pytest.raises(InvalidResponse) as caught:
            await client.get("ex_1")
    assert caught.value.status_code == 502


async def test_unexpected_success_body_is_invalid_response() -> None:
    service = FakeService(on_request=lambda _: httpx.Response(200, json={"id": 3}))
    async with client_for(service) as client:
        with pytest.raises(InvalidResponse):
            await client.get("ex_1")


async def test_transport_failure_is_service_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with ExecutionClient(
        "http://sandbox.test", KEY, transport=httpx.MockTransport(refuse)
    ) as client:
        with pytest.raises(ServiceUnavailable):
            await client.get("ex_1")


async def test_list_cancel_and_batch_keep_order() -> None:
    service = FakeService(never_finish=True)
    async with client_for(service) as client:
        made = await client.batch(
            [
                ExecutionCreate(code="print(1)"),
                ExecutionCreate(code="print(2)", language="python"),
            ]
        )
        cancelled = await client.cancel(made[0].id)
        listed = await client.list(limit=10)
    assert [e.state for e in made] == ["queued", "queued"]
    assert cancelled.state == "cancelled"
    assert [e.id for e in listed] == [made[1].id, made[0].id]


async def test_sessions_and_files_round_trip() -> None:
    service = FakeService()
    async with client_for(service) as client:
        session = await client.create_session(policy="default", idle_timeout_s=60)
        info = await client.upload(session.id, "data/in put.csv", b"a,b\n1,2\n")
        listed = await client.list_files(session.id)
        data = await client.download(session.id, "data/in put.csv")
        fetched = await client.get_session(session.id)
        await client.delete_session(session.id)
        deleted = await client.get_session(session.id)
        with pytest.raises(SessionEnded):
            await client.download(session.id, "data/in put.csv")
        await client.delete_session(session.id)  # deleting an ended session is a no-op
        with pytest.raises(NotFound):
            await client.get_session("se_never_issued")
    assert info.path == "data/in put.csv"
    assert info.size_bytes == 8
    assert [f.path for f in listed] == ["data/in put.csv"]
    assert data == b"a,b\n1,2\n"
    assert fetched.id == session.id
    assert fetched.state == "active"
    assert deleted.state == "deleted"
    put = next(r for r in service.requests if r[0] == "PUT")
    assert put[1] == f"/v1/sessions/{session.id}/files/data/in put.csv"


async def test_stream_yields_typed_events_and_stops_at_result() -> None:
    service = FakeService(never_finish=False, polls_before_final=5)
    async with client_for(service) as client:
        execution = await client.submit("python", "print('hi')")
        events = [event async for event in client.stream(execution.id)]
    assert isinstance(events[0], StateEvent)
    assert events[0].state == "running"
    assert isinstance(events[1], OutputEvent)
    assert events[1].data == "hi\n"
    assert isinstance(events[-1], ResultEvent)
    assert events[-1].execution.state == "finished"
    assert len(events) == 3  # the unknown "ping" event is skipped


async def test_stream_of_unknown_execution_raises_not_found() -> None:
    async with client_for(FakeService()) as client:
        with pytest.raises(NotFound):
            _ = [event async for event in client.stream("ex_missing")]
