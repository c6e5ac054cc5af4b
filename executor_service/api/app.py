"""The app factory: everything is built from the settings passed in, nothing at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from celery import Celery
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from executor_service import __version__
from executor_service.api import catalogue, executions, health, metrics, sessions
from executor_service.api.error_responses import error_response, install_error_handlers
from executor_service.api.services import Services
from executor_service.jobs.dispatch import Dispatcher, create_sender
from executor_service.jobs.metrics import RedisMetrics
from executor_service.jobs.plan import Planner
from executor_service.jobs.redis_store import RedisJobStore
from executor_service.jobs.store import JobStore
from executor_service.settings import Settings


class BodySizeLimit:
    """Refuse a declared body over the bound before anything reads it into memory."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > self._max_bytes:
                    response = error_response(
                        413, "payload_too_large", f"the body is over {self._max_bytes} bytes"
                    )
                    await response(scope, receive, send)
                    return
        await self._app(scope, receive, send)


def create_app(
    settings: Settings, *, store: JobStore | None = None, celery: Celery | None = None
) -> FastAPI:
    """The API. `store` and `celery` may be injected (tests); by default both use Redis."""
    job_store = store if store is not None else RedisJobStore.from_settings(settings)
    sender = celery if celery is not None else create_sender(settings)
    client = job_store.client if isinstance(job_store, RedisJobStore) else None
    if client is None:
        client = RedisJobStore.from_settings(settings).client
    services = Services(
        settings=settings,
        store=job_store,
        planner=Planner.load(settings),
        dispatcher=Dispatcher(sender, job_store, settings),
        metrics=RedisMetrics(client),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Routes are sync and SSE streams hold a thread while they wait: size the pool for both.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        yield

    app = FastAPI(
        title="agent-sandbox execution service",
        version=__version__,
        description="Runs untrusted code from AI agents in hardened, throw-away sandboxes.",
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    for module in (executions, sessions, catalogue, health, metrics):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    return app
