"""The app factory: everything is built from the settings passed in, nothing at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import anyio.to_thread
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.routing import Route

from executor_service import __version__
from executor_service.api import catalogue, executions, health, metrics, sessions
from executor_service.api.auth_before_body import AuthBeforeBody
from executor_service.api.compat import judge0, piston
from executor_service.api.error_responses import install_error_handlers
from executor_service.api.key_cache import cached_keys
from executor_service.api.mcp.http import PATH as MCP_PATH
from executor_service.api.mcp.http import McpEndpoint
from executor_service.api.services import Services
from executor_service.jobs.dispatch import Dispatcher
from executor_service.jobs.metrics import RedisMetrics
from executor_service.jobs.plan import Planner
from executor_service.jobs.redis_store import redis_stores
from executor_service.jobs.session_calls import SessionCaller
from executor_service.jobs.store import Stores
from executor_service.settings import Settings


def build_services(settings: Settings, *, stores: Stores | None = None) -> Services:
    """What the routes share; also what `executor-service mcp` (stdio) serves its tools with."""
    built, client = redis_stores(settings)
    given = stores if stores is not None else built
    # Every request authenticates: a found key is reused for auth_cache_s (0: looked up each time).
    shared = replace(given, keys=cached_keys(given.keys, settings.auth_cache_s))
    return Services(
        settings=settings,
        stores=shared,
        planner=Planner.load(settings),
        dispatcher=Dispatcher(client),
        sessions=SessionCaller(shared.session_ops, settings),
        metrics=RedisMetrics(client),
    )


def create_app(settings: Settings, *, stores: Stores | None = None) -> FastAPI:
    """The API. `stores` may be injected (tests); by default they use Redis, as the queue does."""
    services = build_services(settings, stores=stores)
    shared = services.stores
    mcp = McpEndpoint(services)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Routes are sync and SSE streams hold a thread while they wait: size the pool for both.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        async with mcp.running():
            yield

    # /docs loads Swagger UI from the API itself (/static-offline-docs), not from a CDN, so it
    # works on a machine without internet. No /redoc: ReDoc's bundle still fetches its logo online.
    app = FastAPIOffline(
        redoc_url=None,
        title="agent-sandbox execution service",
        version=__version__,
        description="Runs untrusted code from AI agents in hardened, throw-away sandboxes.",
        lifespan=lifespan,
    )
    app.state.services = services
    foreign_errors = (piston.ERROR_SHAPE, judge0.ERROR_SHAPE)
    install_error_handlers(app, foreign_errors)
    for module in (executions, sessions, catalogue, health, metrics, piston, judge0):
        app.include_router(module.router)
    # An ASGI app as the endpoint: the SDK's transport answers every method itself.
    app.router.routes.append(Route(MCP_PATH, endpoint=mcp, include_in_schema=False))
    app.add_middleware(
        AuthBeforeBody,
        keys=shared.keys,
        max_body_bytes=settings.max_request_bytes,
        shapes=foreign_errors,
    )
    return app
