"""Starting the studio: stores opened, tools registered, the app served by uvicorn."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from agent_client.errors import SpecError
from agent_client.studio.app import create_app
from agent_client.studio.settings import StudioSettings
from agent_client.studio.store import sql_stores
from agent_client.team_builder import import_tool


def tool_registry(paths: Sequence[str]) -> dict[str, Callable[..., Any]]:
    """Tools by name from ``module:function`` (or ``name=module:function``) the operator gave.

    Raises:
        SpecError: a path cannot be imported, or two tools share a name.
    """
    registry: dict[str, Callable[..., Any]] = {}
    for entry in paths:
        name, sep, path = entry.partition("=")
        func = import_tool(path if sep else entry)
        name = name if sep else getattr(func, "__name__", entry)
        if name in registry:
            raise SpecError(f"two tools are named {name!r}: give one as name=module:function")
        registry[name] = func
    return registry


def build_app(settings: StudioSettings) -> FastAPI:
    """The app with its SQL stores; a SQLite file is made readable by its owner only."""
    runs, connections = sql_stores(settings.database_url)
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        with contextlib.suppress(OSError):
            os.chmod(url.database, 0o600)  # it holds the endpoints' keys
    return create_app(
        settings,
        run_store=runs,
        connection_store=connections,
        tools=tool_registry(settings.tools),
    )


def serve(settings: StudioSettings) -> None:
    """Serve until interrupted."""
    uvicorn.run(build_app(settings), host=settings.host, port=settings.port, log_level="info")
