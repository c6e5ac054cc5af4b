"""`executor-service mcp`: the same tools over stdio, for desktop clients that start a command.

It builds the API's own services from the settings (Redis, the policies, the Celery sender)
and calls the same admission and session functions in process, so a run takes exactly the
path a REST request takes. The key (from the environment) is checked against the key store at
start and again on every call, as the API checks each request (through the same key cache), so
a revoked key stops working here as soon as it does there.
"""

from __future__ import annotations

import anyio

from executor_service.api.deps import authenticate
from executor_service.api.mcp.server import create_mcp_server
from executor_service.api.services import Services
from executor_service.jobs.tenant import ApiKey


def serve_stdio(services: Services, api_key: str) -> None:
    """Serve until the client closes stdin; an unknown key stops start-up (Unauthorized)."""
    keys = services.stores.keys

    def key_of_process(_request: object) -> ApiKey:
        return authenticate(keys, f"Bearer {api_key}")

    key_of_process(None)
    anyio.run(create_mcp_server(services, key_of_process).run_stdio_async)
