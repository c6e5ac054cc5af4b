"""Routes of /v1/executions: submit (one or a batch), read, list, cancel, and follow events."""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from redis import RedisError

from executor_service.api.admission import admit, build_request, wait_until_final, with_field_prefix
from executor_service.api.deps import CurrentKey, ServicesDep
from executor_service.api.error_responses import ERROR_RESPONSES
from executor_service.api.services import Services
from executor_service.api.wire.errors import ErrorBody
from executor_service.api.wire.events import event_payload, state_event
from executor_service.api.wire.execution_requests import ExecutionBatch, ExecutionCreate
from executor_service.api.wire.executions import (
    ExecutionList,
    ExecutionView,
    execution_list,
    execution_view,
)
from executor_service.errors import NotFound, QuotaExceeded, ServiceError
from executor_service.jobs.store_rules import RETRY_AFTER_S

EVENT_ID = re.compile(r"\d{1,20}-\d{1,20}")  # a Redis stream entry id

router = APIRouter(prefix="/v1/executions", tags=["executions"], responses=ERROR_RESPONSES)

SUBMIT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": ExecutionView, "description": "wait=true and it ended in time"},
    403: {"model": ErrorBody, "description": "The key may not use that policy"},
    409: {"model": ErrorBody, "description": "session_busy: retry; session_ended: open a new one"},
    413: {"model": ErrorBody, "description": "The body, or code, stdin or files, over a bound"},
    429: {"model": ErrorBody, "description": "A bound of the key: concurrency or stored bytes"},
    503: {"model": ErrorBody, "description": "The queue is full or the store did not answer"},
}


def _json(model: BaseModel, status_code: int) -> Response:
    """A model we built ourselves, sent as is: FastAPI would validate it again against the
    response model, on another trip through the thread pool, for every submission."""
    return Response(model.model_dump_json(), status_code, media_type="application/json")


@router.post("", status_code=202, response_model=ExecutionView, responses=SUBMIT_RESPONSES)
def submit(body: ExecutionCreate, key: CurrentKey, services: ServicesDep) -> Response:
    """Queue one execution; with `wait`, answer when it ends (200) or at the wait bound (202)."""
    execution = admit(services, key, build_request(services, key, body))
    status_code = 202
    if body.wait:
        timeout = min(body.wait_timeout_s, services.settings.max_wait_s)
        execution = wait_until_final(services, execution.id, timeout)
        if execution.state.final:
            status_code = 200
    return _json(execution_view(execution), status_code)


@router.post("/batch", status_code=202, response_model=ExecutionList, responses=SUBMIT_RESPONSES)
def submit_batch(body: ExecutionBatch, key: CurrentKey, services: ServicesDep) -> Response:
    """Queue several executions in order; if any is refused, none is left queued."""
    requests = []
    for index, item in enumerate(body.executions):
        try:
            requests.append(build_request(services, key, item))
        except ServiceError as exc:
            raise with_field_prefix(exc, f"executions.{index}") from exc
    executions = services.stores.executions
    if executions.active_count(key.tenant) + len(requests) > key.max_concurrency:
        raise QuotaExceeded(
            f"the batch would exceed this tenant's {key.max_concurrency} concurrent executions",
            retry_after_s=RETRY_AFTER_S,
        )
    accepted = []
    try:
        for request in requests:
            accepted.append(admit(services, key, request))
    except ServiceError:
        for execution in accepted:
            executions.cancel(execution.id, key.tenant)
        raise
    return _json(execution_list(accepted), 202)


@router.get("")
def list_executions(
    key: CurrentKey,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> ExecutionList:
    """The caller's executions, newest first."""
    found = services.stores.executions.newest(
        key.tenant, min(limit, services.settings.max_list_limit)
    )
    return execution_list(found)


@router.get("/{execution_id}")
def get_execution(execution_id: str, key: CurrentKey, services: ServicesDep) -> ExecutionView:
    return execution_view(services.stores.executions.get(execution_id, key.tenant))


@router.post("/{execution_id}/cancel")
def cancel_execution(execution_id: str, key: CurrentKey, services: ServicesDep) -> ExecutionView:
    """Cancel unless it already ended; a running container is killed by its worker."""
    execution, changed = services.stores.executions.cancel(execution_id, key.tenant)
    if changed:
        services.metrics.count_outcome("cancelled")
    return execution_view(execution)


@router.get(
    "/{execution_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"},
        429: {"model": ErrorBody, "description": "The key's open event streams are at its bound"},
    },
)
def follow_events(
    execution_id: str,
    key: CurrentKey,
    services: ServicesDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """state, output... and a final result event; a late subscriber gets the replay.

    Each event carries an `id:`; a client that reconnects with `Last-Event-ID` resumes after it.
    """
    executions = services.stores.executions
    executions.get(execution_id, key.tenant)
    after = last_event_id if last_event_id and EVENT_ID.fullmatch(last_event_id) else "0-0"
    token = uuid.uuid4().hex
    lease_s = services.settings.stream_lease_s
    if not executions.open_stream(key.tenant, token, limit=key.max_event_streams, ttl_s=lease_s):
        raise QuotaExceeded(
            f"this key may follow at most {key.max_event_streams} event streams at once; close "
            "one, or poll GET /v1/executions/{id}",
            retry_after_s=RETRY_AFTER_S,
        )
    return StreamingResponse(
        _event_stream(services, execution_id, after, key.tenant, token),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(event: str, data: str, ident: str | None = None) -> str:
    head = f"id: {ident}\n" if ident else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


def _displays(view: ExecutionView) -> Iterator[str]:
    """A cell's displays as events of their own, so a follower can show each (they come whole
    with the cell's result: the kernel bridge returns them when the cell ends)."""
    for output in view.result.outputs if view.result is not None else ():
        yield _sse("display", output.model_dump_json())


def _event_stream(
    services: Services, execution_id: str, after: str, tenant: str, token: str
) -> Iterator[str]:
    # Sync on purpose: Starlette iterates it in a worker thread, and each read blocks a bounded
    # time, so a client that left is noticed within one read (and its slot freed in `finally`).
    store = services.stores.executions
    lease_s = services.settings.stream_lease_s
    renew_at = time.monotonic() + lease_s / 3
    sent_any = after != "0-0"
    try:
        while True:
            if time.monotonic() >= renew_at:
                store.renew_stream(tenant, token, ttl_s=lease_s)
                renew_at = time.monotonic() + lease_s / 3
            events = store.read_events(execution_id, after, block_ms=2000)
            if not events:
                current = store.get(execution_id)
                if not sent_any or current.state.final:
                    # The stream expired or was trimmed: say where things stand from the record.
                    yield _sse("state", state_event(current.state).model_dump_json())
                    sent_any = True
                if current.state.final:
                    view = execution_view(current)
                    yield from _displays(view)
                    yield _sse("result", view.model_dump_json())
                    return
                yield ": keep-alive\n\n"
                continue
            for event in events:
                after = event.id
                sent_any = True
                if event.kind == "result":
                    final = execution_view(store.get(execution_id))
                    yield from _displays(final)
                    yield _sse("result", final.model_dump_json(), event.id)
                    return
                yield _sse(event.kind, event_payload(event).model_dump_json(), event.id)
    except (NotFound, RedisError):
        # Gone, or the store is away: end the stream; the client resumes with Last-Event-ID.
        return
    finally:
        with contextlib.suppress(RedisError):
            store.close_stream(tenant, token)
