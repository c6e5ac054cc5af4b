"""`/mcp` in the API process: streamable HTTP behind the REST API's own Bearer keys.

Every request is authenticated here, before the SDK reads it, with the same key store and the
same answer (401 and the service's error body) as the REST routes. The transport is stateless:
each request carries its key and stands alone, so no MCP session outlives a request, ties a
client to one API process, or could be carried over to another key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from redis import RedisError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from executor_service.api.deps import KEY_STATE, authenticate
from executor_service.api.error_responses import error_response
from executor_service.api.mcp.server import create_mcp_server
from executor_service.api.services import Services
from executor_service.errors import ServiceError, Unauthorized
from executor_service.jobs.store_rules import RETRY_AFTER_S
from executor_service.jobs.tenant import ApiKey

PATH = "/mcp"


def key_of_request(request: object) -> ApiKey:
    """The key McpEndpoint checked for this HTTP request."""
    state = request.scope.get("state", {}) if isinstance(request, Request) else {}
    key = state.get(KEY_STATE)
    if not isinstance(key, ApiKey):
        raise Unauthorized("send Authorization: Bearer <key>")
    return key


class McpEndpoint:
    """The ASGI app mounted at /mcp: authenticate, then hand the request to the SDK."""

    def __init__(self, services: Services) -> None:
        self._keys = services.stores.keys
        self._server = create_mcp_server(services, key_of_request)
        # Building the Starlette app creates the SDK's session manager; only the manager and
        # its ASGI entry are used, mounted in the API's own app and lifespan.
        self._server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            max_request_body_size=services.settings.max_request_bytes,
            # DNS-rebinding protection guards servers a browser can reach without a secret;
            # every request here needs a Bearer key, and the API answers on any host name.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._transport = StreamableHTTPASGIApp(self._server.session_manager)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The SDK's task group; must be entered inside the API's lifespan."""
        async with self._server.session_manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._transport(scope, receive, send)
            return
        header = Headers(scope=scope).get("authorization")
        try:
            key = await anyio.to_thread.run_sync(authenticate, self._keys, header)
        except ServiceError as exc:
            response = error_response(exc.status_code, exc.code, exc.message)
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        except RedisError:
            response = error_response(
                503,
                "store_unavailable",
                "the service's store did not answer; retry shortly",
                retry_after_s=RETRY_AFTER_S,
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[KEY_STATE] = key
        await self._transport(scope, receive, send)
