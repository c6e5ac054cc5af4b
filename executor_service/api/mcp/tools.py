"""The MCP tools, each a thin mapping onto what the REST API already does.

Code runs only through `admission` (build_request, admit, wait_until_final), and session work
only through the session routes' own functions, so every check, quota and tenant rule of the
REST API holds here too; there is no second way to run code. The service's calls block (Redis,
the worker's replies), so each tool runs its work in a thread.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST, CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError
from redis import RedisError

from executor_service import __version__
from executor_service.api import sessions as session_routes
from executor_service.api.admission import admit, build_request, wait_until_final
from executor_service.api.mcp.descriptions import tool_descriptions
from executor_service.api.mcp.results import (
    FileContent,
    FileEntry,
    FileListing,
    RunOutput,
    SessionClosed,
    SessionOutput,
    WrittenFile,
    file_content,
    is_answer,
    run_output,
    run_text,
)
from executor_service.api.schemas import ExecutionCreate, SessionCreate
from executor_service.api.services import Services
from executor_service.errors import Overloaded, ServiceError, error_for_code
from executor_service.jobs.execution import Execution, ExecutionState
from executor_service.jobs.store_rules import RETRY_AFTER_S
from executor_service.jobs.tenant import ApiKey
from executor_service.jobs.workspace_path import safe_workspace_path
from executor_service.policy.model import Policy

T = TypeVar("T")

# The caller's key from the transport's request (an HTTP request, or None on stdio). It may
# block (a key store lookup), so it is only called inside a worker thread.
KeySource = Callable[[object], ApiKey]

INSTRUCTIONS = (
    "Runs untrusted code in hardened, throw-away Docker sandboxes. run_code for one-off "
    "programs; create_session, then run_in_session / write_file / read_file / list_files, for "
    "work that needs files to persist between runs; close_session when done."
)

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


def run_to_end(services: Services, key: ApiKey, body: ExecutionCreate) -> Execution:
    """Admit the run as the REST API does, then wait for as long as it may legitimately take.

    The wait is the run's lease (its wall time plus the service's margin): a run not ended by
    then is stuck behind others, so it is cancelled rather than left to finish unread.
    """
    checked = build_request(services, key, body)
    execution = admit(services, key, checked)
    final = wait_until_final(services, execution.id, checked.lease_s)
    if not final.state.final:
        final, changed = services.stores.executions.cancel(execution.id, key.tenant)
        if changed:
            services.metrics.count_outcome("cancelled")
            raise Overloaded(
                f"the run did not end within {checked.lease_s:g} s (the queue is busy); it was "
                "cancelled",
                retry_after_s=RETRY_AFTER_S,
            )
    if final.state == ExecutionState.FAILED and final.error is not None:
        raise error_for_code(final.error.code, final.error.message)
    if not is_answer(final):
        raise ServiceError(f"the run ended {final.state.value} without a result")
    return final


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


def _structured(output: Any, text: str) -> CallToolResult:
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
        def work(key: ApiKey) -> Execution:
            body = ExecutionCreate.model_validate(
                {
                    "language": language,
                    "code": code,
                    "stdin": stdin,
                    "files": _input_files(files),
                    "policy": policy,
                    "limits": None if timeout_s is None else {"wall_time_s": timeout_s},
                }
            )
            return run_to_end(self._services, key, body)

        return _run_result(await self._call(ctx, work))

    async def run_in_session(
        self,
        session_id: SessionId,
        code: str,
        ctx: Context,
        stdin: Stdin = "",
        files: InputFiles = None,
        timeout_s: TimeoutS = None,
    ) -> Annotated[CallToolResult, RunOutput]:
        def work(key: ApiKey) -> Execution:
            session = self._services.stores.sessions.get(session_id, key.tenant)
            body = ExecutionCreate.model_validate(
                {
                    "language": session.language,
                    "code": code,
                    "stdin": stdin,
                    "files": _input_files(files),
                    "session_id": session_id,
                    "limits": None if timeout_s is None else {"wall_time_s": timeout_s},
                }
            )
            return run_to_end(self._services, key, body)

        return _run_result(await self._call(ctx, work))

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


class DescribeForCaller:
    """Rewrite `tools/list` descriptions with the caller's own default policy.

    The SDK lists tools from one static table, but keys differ in the policies they may use;
    this middleware (the SDK's provisional middleware seam) swaps in each caller's limits.
    """

    def __init__(self, services: Services, keys: KeySource) -> None:
        self._services = services
        self._keys = keys

    def _policy(self, request: object) -> Policy:
        return self._services.planner.policy_for(self._keys(request), None)

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method != "tools/list" or not isinstance(result, dict):
            return result
        try:
            policy = await anyio.to_thread.run_sync(self._policy, ctx.request)
        except ServiceError as exc:
            raise MCPError(code=INVALID_REQUEST, message=f"{exc.code}: {exc.message}") from exc
        texts = tool_descriptions(policy)
        tools = [
            {**tool, "description": texts.get(tool.get("name", ""), tool.get("description"))}
            for tool in result.get("tools", [])
        ]
        return {**result, "tools": tools}


def create_mcp_server(services: Services, keys: KeySource) -> MCPServer:
    """The tools, described from the service's default policy until a caller lists them."""
    planner = services.planner
    default = planner.policies.get(services.settings.default_policy)
    fallback: Policy = default if default is not None else next(iter(planner.policies.values()))
    texts = tool_descriptions(fallback)
    server: MCPServer = MCPServer(
        "agent-sandbox",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level="WARNING",
        middleware=[DescribeForCaller(services, keys)],
    )
    tools = SandboxTools(services, keys)
    runs = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    for name, function, hints in (
        ("run_code", tools.run_code, runs),
        ("create_session", tools.create_session, runs),
        ("run_in_session", tools.run_in_session, runs),
        ("write_file", tools.write_file, runs),
        ("read_file", tools.read_file, reads),
        ("list_files", tools.list_files, reads),
        (
            "close_session",
            tools.close_session,
            ToolAnnotations(destructive_hint=True, idempotent_hint=True, open_world_hint=False),
        ),
    ):
        server.add_tool(function, name=name, description=texts[name], annotations=hints)
    return server
