"""The MCP server: the sandbox tools, described for each caller from its own default policy.

One server object serves either transport; what differs is only where the caller's key comes
from (`KeySource`): the HTTP request /mcp authenticated, or the key stdio was started with.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST, ToolAnnotations

from executor_service import __version__
from executor_service.api.mcp.descriptions import tool_descriptions
from executor_service.api.mcp.tools import KeySource, SandboxTools
from executor_service.api.services import Services
from executor_service.errors import ServiceError
from executor_service.policy.model import Policy

INSTRUCTIONS = (
    "Runs untrusted code in hardened, throw-away Docker sandboxes. run_code for one-off "
    "programs; create_session, then run_in_session / write_file / read_file / list_files, for "
    "work that needs files to persist between runs; close_session when done."
)


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
