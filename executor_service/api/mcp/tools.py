"""The MCP tools, each a thin mapping onto what the REST API already does.

Code runs only through `runs.run_to_end` (admission's build_request, admit, wait_until_final),
and session work only through the session routes' own functions, so every check, quota and
tenant rule of the REST API holds here too; there is no second way to run code. The service's
calls block (Redis, the worker's replies), so each tool runs its work in a thread.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field, ValidationError
from redis import RedisError

from executor_service.api import sessions as session_routes
from executor_service.api.mcp.results import (
    FileContent,
    FileEntry,
    FileListing,
    RunOutput,
    SessionClosed,
    SessionOutput,
    WrittenFile,
    file_content,
    run_output,
    run_text,
)
from executor_service.api.mcp.runs import CallerWatch, run_for_caller, run_to_end
from executor_service.api.schemas import ExecutionCreate, SessionCreate
from executor_service.api.services import Services
from executor_service.errors import ServiceError
from executor_service.jobs.execution import Execution
from executor_service.jobs.tenant import ApiKey
from executor_service.jobs.workspace_path import safe_workspace_path

T = TypeVar("T")

# The caller's key from the transport's request (an HTTP request, or None on stdio). It may
# block (a key store lookup), so it is only called inside a worker thread.
KeySource = Callable[[object], ApiKey]

Language = Annotated[str, Field(description="e.g. python, bash (see the tool description)")]
SessionId = Annotated[str, Field(description="the session_id create_session returned")]
WorkspacePath = Annotated[str, Field(description="a path relative to /workspace, e.g. data/in.csv")]
Stdin = Annotated[str, Field(description="text fed to the program's standard input")]
TimeoutS = Annotated[
    float | None,
    Field(gt=0, description="wall-time limit in seconds; may only lower the policy's"),
]
InputFiles = Annotated[
    dict[str, str] | None,
    Field(description="text files to place in the workspace first: {relative path: content}"),
]
PolicyName = Annotated[
    str | None, Field(description="a policy this key may use; default: the key's default")
]


@contextmanager
def tool_errors() -> Iterator[None]:
    """The one place the service's refusals become MCP tool errors, its message intact."""
    try:
        yield
    except ServiceError as exc:
        where = f" (field {exc.field})" if exc.field else ""
        retry = f"; retry in {exc.retry_after_s} s" if exc.retry_after_s is not None else ""
        raise ToolError(f"{exc.code}: {exc.message}{where}{retry}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'input'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ToolError(f"validation_error: {problems}") from exc
    except RedisError as exc:
        raise ToolError(
            "store_unavailable: the service's store did not answer; retry shortly"
        ) from exc


def _input_files(files: dict[str, str] | None) -> list[dict[str, str]]:
    return [
        {"path": path, "content": base64.b64encode(text.encode("utf-8")).decode("ascii")}
        for path, text in (files or {}).items()
    ]


def _run_result(execution: Execution) -> CallToolResult:
    output = run_output(execution)
    return CallToolResult(
        content=[TextContent(type="text", text=run_text(output))],
        structured_content=output.model_dump(mode="json"),
    )


def _structured(output: BaseModel, text: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=output.model_dump(mode="json"),
    )


class SandboxTools:
    """The tools' bodies; the caller's key comes from `keys` on every call."""

    def __init__(self, services: Services, keys: KeySource) -> None:
        self._services = services
        self._keys = keys

    async def _call(self, ctx: Context, work: Callable[[ApiKey], T]) -> T:
        request = ctx.request_context.request

        def in_thread() -> T:
            with tool_errors():
                return work(self._keys(request))

        return await anyio.to_thread.run_sync(in_thread)

    async def _run(
        self, ctx: Context, body_for: Callable[[ApiKey], ExecutionCreate]
    ) -> CallToolResult:
        request = ctx.request_context.request

        def work(watch: CallerWatch) -> Execution:
            with tool_errors():
                key = self._keys(request)
                return run_to_end(self._services, key, body_for(key), watch)

        return _run_result(await run_for_caller(self._services, work))

    async def run_code(
        self,
        language: Language,
        code: str,
        ctx: Context,
        stdin: Stdin = "",
        files: InputFiles = None,
        timeout_s: TimeoutS = None,
        policy: PolicyName = None,
    ) -> Annotated[CallToolResult, RunOutput]:
        def body_for(_key: ApiKey) -> ExecutionCreate:
            return ExecutionCreate.model_validate(
                {
                    "language": language,
                    "code": code,
                    "stdin": stdin,
                    "files": _input_files(files),
                    "policy": policy,
                    "limits": None if timeout_s is None else {"wall_time_s": timeout_s},
                }
            )

        return await self._run(ctx, body_for)

    async def run_in_session(
        self,
        session_id: SessionId,
        code: str,
        ctx: Context,
        stdin: Stdin = "",
        files: InputFiles = None,
        timeout_s: TimeoutS = None,
    ) -> Annotated[CallToolResult, RunOutput]:
        def body_for(key: ApiKey) -> ExecutionCreate:
            session = self._services.stores.sessions.get(session_id, key.tenant)
            return ExecutionCreate.model_validate(
                {
                    "language": session.language,
                    "code": code,
                    "stdin": stdin,
                    "files": _input_files(files),
                    "session_id": session_id,
                    "limits": None if timeout_s is None else {"wall_time_s": timeout_s},
                }
            )

        return await self._run(ctx, body_for)

    async def create_session(
        self, language: Language, ctx: Context, policy: PolicyName = None
    ) -> Annotated[CallToolResult, SessionOutput]:
        def work(key: ApiKey) -> SessionOutput:
            body = SessionCreate(language=language, policy=policy)
            view = session_routes.create_session(body, key, self._services)
            return SessionOutput(
                session_id=view.id,
                language=view.language,
                policy=view.policy,
                expires_at=view.expires_at.isoformat(),
                idle_timeout_s=view.idle_timeout_s,
                max_lifetime_s=view.max_lifetime_s,
            )

        output = await self._call(ctx, work)
        text = (
            f"session {output.session_id} is open ({output.language}, policy {output.policy}); "
            f"it ends after {output.idle_timeout_s} s idle, at the latest {output.expires_at}"
        )
        return _structured(output, text)

    async def write_file(
        self, session_id: SessionId, path: WorkspacePath, content: str, ctx: Context
    ) -> Annotated[CallToolResult, WrittenFile]:
        def work(key: ApiKey) -> WrittenFile:
            data = content.encode("utf-8")
            view = session_routes.put_file(session_id, path, data, key, self._services)
            return WrittenFile(path=view.path, size_bytes=view.size_bytes)

        output = await self._call(ctx, work)
        return _structured(output, f"wrote {output.size_bytes} bytes to {output.path}")

    async def read_file(
        self, session_id: SessionId, path: WorkspacePath, ctx: Context
    ) -> Annotated[CallToolResult, FileContent]:
        def work(key: ApiKey) -> bytes:
            response = session_routes.read_file(session_id, path, key, self._services)
            return bytes(response.body)

        output = file_content(path, await self._call(ctx, work))
        text = output.content if output.encoding == "utf-8" else f"(base64) {output.content}"
        return _structured(output, text)

    async def list_files(
        self,
        session_id: SessionId,
        ctx: Context,
        path: Annotated[str | None, Field(description="only files under this directory")] = None,
    ) -> Annotated[CallToolResult, FileListing]:
        def work(key: ApiKey) -> FileListing:
            listing = session_routes.list_files(session_id, key, self._services)
            whole = not path or path in (".", "/")
            under = None if whole else safe_workspace_path(path or "", field="path")
            return FileListing(
                files=[
                    FileEntry(path=f.path, size_bytes=f.size_bytes)
                    for f in listing.files
                    if under is None or f.path == under or f.path.startswith(f"{under}/")
                ],
                truncated=listing.truncated,
            )

        output = await self._call(ctx, work)
        lines = [f"{entry.path}\t{entry.size_bytes} bytes" for entry in output.files]
        if output.truncated:
            lines.append("(more files exist than one listing returns)")
        return _structured(output, "\n".join(lines) or "(no files)")

    async def close_session(
        self, session_id: SessionId, ctx: Context
    ) -> Annotated[CallToolResult, SessionClosed]:
        def work(key: ApiKey) -> SessionClosed:
            session_routes.delete_session(session_id, key, self._services)
            return SessionClosed(session_id=session_id, closed=True)

        output = await self._call(ctx, work)
        return _structured(output, f"session {session_id} is closed; its files are gone")
