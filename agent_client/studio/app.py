"""The studio's FastAPI app: the page, its assets, the JSON API, and the guards in front of them.

Guards: a token (when set) on every request; on loopback without a token, a Host check so a
web page elsewhere cannot reach the studio by DNS rebinding; and a custom header on every
request that changes something, which a cross-site form or image can never send.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from agent_client.studio.errors import StudioError
from agent_client.studio.routes import connections, runs, specs
from agent_client.studio.runs import RunManager
from agent_client.studio.settings import LOOPBACK_NAMES, StudioSettings, is_loopback
from agent_client.studio.store import ConnectionStore, RunStore
from agent_client.team_builder import ToolRegistry

TOKEN_COOKIE = "studio_token"  # noqa: S105 - the cookie's name, not a secret
MUTATION_HEADER = "x-studio-request"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def create_app(
    settings: StudioSettings,
    *,
    run_store: RunStore,
    connection_store: ConnectionStore,
    tools: ToolRegistry,
) -> FastAPI:
    """The studio app over the given stores and tool registry (nothing is built at import)."""
    manager = RunManager(run_store, connection_store, tools)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        run_store.mark_interrupted()
        yield
        await manager.close()

    app = FastAPI(title="agent-client studio", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.runs = run_store
    app.state.connections = connection_store
    app.state.manager = manager
    app.state.tools = tools
    static = resources.files("agent_client.studio") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    app.include_router(specs.router)
    app.include_router(runs.router)
    app.include_router(connections.router)

    @app.get("/", include_in_schema=False)
    async def index(token: str | None = None) -> Response:
        if token is not None and settings.token is not None:
            if not _token_ok(settings, token):
                return _error(401, "bad_token", "that is not this studio's token")
            # The token moves into an HttpOnly cookie and out of the address bar and history.
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
            return response
        return FileResponse(str(static / "index.html"), media_type="text/html")

    @app.exception_handler(StudioError)
    async def studio_error(request: Request, exc: StudioError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, [p.model_dump() for p in exc.problems])

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"path": ".".join(str(p) for p in e["loc"][1:]), "message": e["msg"]}
            for e in exc.errors()
        ]
        message = "the request body does not fit: see problems"
        return _error(422, "invalid_request", message, problems)

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        refusal = _refusal(settings, request)
        if refusal is not None:
            return refusal
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'"
        )
        return response

    return app


def _refusal(settings: StudioSettings, request: Request) -> Response | None:
    if settings.token is not None:
        offered = request.cookies.get(TOKEN_COOKIE) or _bearer(request)
        first_visit = request.url.path == "/" and "token" in request.query_params
        if not first_visit and (offered is None or not _token_ok(settings, offered)):
            return _error(
                401,
                "token_required",
                "this studio needs its token: open /?token=<token> once, or send "
                "'Authorization: Bearer <token>'",
            )
    elif is_loopback(settings.host):
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
        if host not in LOOPBACK_NAMES:
            return _error(
                403, "bad_host", f"this studio answers on 127.0.0.1 or localhost, not {host!r}"
            )
    if request.method not in _SAFE_METHODS and request.headers.get(MUTATION_HEADER) != "1":
        return _error(
            403,
            "missing_header",
            f"requests that change something must carry the header '{MUTATION_HEADER}: 1' "
            "(the page sends it; cross-site forms cannot)",
        )
    return None


def _bearer(request: Request) -> str | None:
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    return value if scheme.lower() == "bearer" and value else None


def _token_ok(settings: StudioSettings, offered: str) -> bool:
    if settings.token is None:
        return False
    return hmac.compare_digest(offered.encode(), settings.token.get_secret_value().encode())


def _error(
    status: int, code: str, message: str, problems: list[dict[str, Any]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if problems:
        body["error"]["problems"] = problems
    return JSONResponse(body, status_code=status)
