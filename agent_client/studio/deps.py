"""What routes take from the app: the stores, the run manager and the tool registry."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from agent_client.studio.runs import RunManager
from agent_client.studio.store import ConnectionStore, RunStore
from agent_client.team_builder import ToolRegistry


def _runs(request: Request) -> RunStore:
    return cast(RunStore, request.app.state.runs)


def _connections(request: Request) -> ConnectionStore:
    return cast(ConnectionStore, request.app.state.connections)


def _manager(request: Request) -> RunManager:
    return cast(RunManager, request.app.state.manager)


def _tools(request: Request) -> ToolRegistry:
    return cast(ToolRegistry, request.app.state.tools)


Runs = Annotated[RunStore, Depends(_runs)]
Connections = Annotated[ConnectionStore, Depends(_connections)]
Manager = Annotated[RunManager, Depends(_manager)]
Tools = Annotated[ToolRegistry, Depends(_tools)]
