"""ExecutionClient: the one place where HTTP becomes typed models and wire errors become ours."""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import quote

import httpx
import httpx_sse
from pydantic import BaseModel, TypeAdapter, ValidationError

from agent_client.errors import (
    SERVICE_ERRORS_BY_CODE,
    InvalidResponse,
    ServiceError,
    ServiceUnavailable,
    WaitTimeout,
)
from agent_client.service.models import (
    EgressEvent,
    EgressRecord,
    Execution,
    ExecutionCreate,
    ExecutionEvent,
    FileInfo,
    InputFile,
    LimitsOverride,
    NetworkOverride,
    OutputEvent,
    PolicyInfo,
    ResultEvent,
    RuntimeInfo,
    Session,
    StateEvent,
    _ExecutionList,
    _FileList,
    _PolicyList,
    _RuntimeList,
    _SessionList,
)

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)
_EVENT_ADAPTER: TypeAdapter[ExecutionEvent] = TypeAdapter(ExecutionEvent)


class ExecutionClient:
    """Async client of the execution service (v1); use it as an async context manager.

    Args:
        base_url: the service's root, e.g. ``http://127.0.0.1:8080``.
        api_key: the tenant's key, sent as a bearer token.
        timeout: per-request HTTP timeout in seconds (long waits poll, they never hold one request).
        transport: an httpx transport to use instead of the network (``httpx.MockTransport``,
            ``httpx.ASGITransport``) so tests need no monkeypatching.
        poll_interval_s: pause between polls while waiting for an execution.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        poll_interval_s: float = 0.2,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )
        self._poll_interval_s = poll_interval_s

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # Executions

    async def submit(
        self,
        language: str = "python",
        code: str | None = None,
        *,
        files: Mapping[str, bytes] | Sequence[InputFile] = (),
        stdin: str = "",
        args: Sequence[str] = (),
        policy: str | None = None,
        limits: LimitsOverride | None = None,
        network: NetworkOverride | None = None,
        session_id: str | None = None,
        collect: Sequence[str] = (),
        wait: bool = False,
        wait_timeout_s: float | None = None,
    ) -> Execution:
        """Queue an execution; with ``wait`` the service holds the answer until it is final or
        ``wait_timeout_s`` passes (bounded by its own maximum).

        Raises:
            ServiceError: a subclass naming why the service refused it.
        """
        request = ExecutionCreate(
            language=language,
            code=code,
            files=_input_files(files),
            stdin=stdin,
            args=list(args),
            policy=policy,
            limits=limits,
            network=network,
            session_id=session_id,
            collect=list(collect),
            wait=wait,
            wait_timeout_s=wait_timeout_s,
        )
        return await self.submit_request(request)

    async def submit_request(self, request: ExecutionCreate) -> Execution:
        """Queue an execution described by a ready request model."""
        body = request.model_dump(mode="json", exclude_none=True)
        timeout = None
        if request.wait:
            # The service may hold the request for up to wait_timeout_s: do not cut it short.
            timeout = (request.wait_timeout_s or 30.0) + (self._http.timeout.read or 30.0)
        response = await self._send("POST", "/v1/executions", json=body, read_timeout_s=timeout)
        return _parse(Execution, response)

    async def batch(self, requests: Sequence[ExecutionCreate]) -> builtins.list[Execution]:
        """Queue several executions at once; the answer keeps their order."""
        body = {
            "executions": [r.model_dump(mode="json", exclude_none=True) for r in requests],
        }
        response = await self._send("POST", "/v1/executions/batch", json=body)
        return _parse(_ExecutionList, response).executions

    async def get(self, execution_id: str) -> Execution:
        response = await self._send("GET", f"/v1/executions/{_segment(execution_id)}")
        return _parse(Execution, response)

    async def list(self, limit: int = 50) -> builtins.list[Execution]:
        """The caller's executions, newest first."""
        response = await self._send("GET", "/v1/executions", params={"limit": limit})
        return _parse(_ExecutionList, response).executions

    async def cancel(self, execution_id: str) -> Execution:
        response = await self._send("POST", f"/v1/executions/{_segment(execution_id)}/cancel")
        return _parse(Execution, response)

    async def wait(self, execution_id: str, timeout_s: float | None = None) -> Execution:
        """Poll until the execution is final.

        Raises:
            WaitTimeout: it was not final after ``timeout_s`` (the execution keeps running).
        """
        started = time.monotonic()
        while True:
            execution = await self.get(execution_id)
            if execution.is_final:
                return execution
            waited = time.monotonic() - started
            if timeout_s is not None and waited >= timeout_s:
                raise WaitTimeout(execution_id, waited)
            await asyncio.sleep(self._poll_interval_s)

    async def run(
        self,
        language: str = "python",
        code: str | None = None,
        *,
        timeout_s: float | None = None,
        **options: Any,
    ) -> Execution:
        """Submit with ``wait=true``, then poll until final: the simple way to run code.

        Args:
            timeout_s: how long to wait in all; None waits as long as the service's limits allow.
            **options: the keyword arguments of :meth:`submit` (files, stdin, policy, ...).
        """
        started = time.monotonic()
        execution = await self.submit(
            language, code, wait=True, wait_timeout_s=timeout_s or 30.0, **options
        )
        if execution.is_final:
            return execution
        remaining = (
            None if timeout_s is None else max(0.0, timeout_s - (time.monotonic() - started))
        )
        return await self.wait(execution.id, remaining)

    async def stream(self, execution_id: str) -> AsyncIterator[ExecutionEvent]:
        """Typed events of one execution (state, output chunks, then the final result)."""
        path = f"/v1/executions/{_segment(execution_id)}/events"
        with _translated():
            async with httpx_sse.aconnect_sse(
                self._http, "GET", path, timeout=httpx.Timeout(None, connect=10.0)
            ) as source:
                if source.response.status_code >= 400:
                    await source.response.aread()
                    raise _error_from(source.response)
                async for sse in source.aiter_sse():
                    event = _decode_event(sse.event, sse.data)
                    if event is None:
                        continue
                    yield event
                    if isinstance(event, ResultEvent):
                        return

    # Sessions

    async def create_session(
        self,
        *,
        policy: str | None = None,
        language: str = "python",
        idle_timeout_s: float | None = None,
        max_lifetime_s: float | None = None,
        kind: Literal["plain", "interpreter"] = "plain",
    ) -> Session:
        """Open a workspace that keeps its files between executions (one execution at a time).

        With ``kind="interpreter"`` (Python only) each execution runs as a cell of one Jupyter
        kernel: variables and imports persist, and displays come back in ``result.outputs``.
        """
        body: dict[str, Any] = {"language": language}
        if kind != "plain":
            body["kind"] = kind
        if policy is not None:
            body["policy"] = policy
        if idle_timeout_s is not None:
            body["idle_timeout_s"] = idle_timeout_s
        if max_lifetime_s is not None:
            body["max_lifetime_s"] = max_lifetime_s
        response = await self._send("POST", "/v1/sessions", json=body)
        return _parse(Session, response)

    async def get_session(self, session_id: str) -> Session:
        response = await self._send("GET", f"/v1/sessions/{_segment(session_id)}")
        return _parse(Session, response)

    async def list_sessions(self) -> builtins.list[Session]:
        response = await self._send("GET", "/v1/sessions")
        return _parse(_SessionList, response).sessions

    async def delete_session(self, session_id: str) -> None:
        await self._send("DELETE", f"/v1/sessions/{_segment(session_id)}")

    async def upload(self, session_id: str, path: str, data: bytes) -> FileInfo:
        """Write one file into a session's workspace."""
        response = await self._send(
            "PUT",
            f"/v1/sessions/{_segment(session_id)}/files/{_file_path(path)}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return _parse(FileInfo, response)

    async def list_files(self, session_id: str) -> builtins.list[FileInfo]:
        response = await self._send("GET", f"/v1/sessions/{_segment(session_id)}/files")
        return _parse(_FileList, response).files

    async def download(self, session_id: str, path: str) -> bytes:
        response = await self._send(
            "GET", f"/v1/sessions/{_segment(session_id)}/files/{_file_path(path)}"
        )
        return response.content

    # Catalogue

    async def policies(self) -> builtins.list[PolicyInfo]:
        response = await self._send("GET", "/v1/policies")
        return _parse(_PolicyList, response).policies

    async def runtimes(self) -> builtins.list[RuntimeInfo]:
        response = await self._send("GET", "/v1/runtimes")
        return _parse(_RuntimeList, response).runtimes

    async def _send(
        self,
        method: str,
        path: str,
        *,
        read_timeout_s: float | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        if read_timeout_s is not None:
            kwargs["timeout"] = read_timeout_s
        with _translated():
            response = await self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error_from(response)
        return response


@contextmanager
def _translated() -> Iterator[None]:
    """The boundary where httpx's failures become ours."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise ServiceUnavailable(f"the service did not answer in time: {exc}") from exc
    except httpx.TransportError as exc:
        raise ServiceUnavailable(f"cannot reach the service: {exc}") from exc


def _error_from(response: httpx.Response) -> ServiceError:
    retry_after = _retry_after(response.headers.get("Retry-After"))
    try:
        payload = response.json()
        error = payload["error"]
        code = str(error["code"])
        message = str(error.get("message") or "")
        field = error.get("field")
    except (ValueError, KeyError, TypeError):
        return InvalidResponse(
            f"HTTP {response.status_code} without the service's error shape",
            status_code=response.status_code,
            retry_after_s=retry_after,
        )
    cls = SERVICE_ERRORS_BY_CODE.get(code, ServiceError)
    return cls(
        message,
        code=code,
        status_code=response.status_code,
        field=str(field) if field is not None else None,
        retry_after_s=retry_after,
    )


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None  # an HTTP date: rare enough from this service to ignore


def _parse(model: type[ModelT], response: httpx.Response) -> ModelT:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise InvalidResponse(
            f"{response.request.method} {response.request.url.path} answered an unexpected body: "
            f"{exc.error_count()} problem(s), first {exc.errors()[0]['msg']}",
            status_code=response.status_code,
        ) from exc


def _decode_event(name: str, data: str) -> ExecutionEvent | None:
    if name not in {"state", "output", "egress", "result"}:
        logger.debug("skipping unknown event %r", name)
        return None
    try:
        payload = json.loads(data)
        if name == "result":
            return ResultEvent(execution=Execution.model_validate(payload))
        if name == "state":
            return StateEvent.model_validate(payload)
        if name == "egress":
            return EgressEvent(record=EgressRecord.model_validate(payload))
        return OutputEvent.model_validate(payload)
    except (ValueError, ValidationError) as exc:
        raise InvalidResponse(f"malformed {name} event: {exc}") from exc


def _input_files(files: Mapping[str, bytes] | Sequence[InputFile]) -> builtins.list[InputFile]:
    if isinstance(files, Mapping):
        return [InputFile.from_bytes(path, data) for path, data in files.items()]
    return list(files)


def _segment(value: str) -> str:
    return quote(value, safe="")


def _file_path(path: str) -> str:
    return quote(path.lstrip("/"), safe="/")


__all__ = ["ExecutionClient"]
