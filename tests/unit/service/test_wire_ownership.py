"""Every body a route reads or answers with is defined in the API: the v1 contract's in
`api/wire/`, a foreign protocol's under `api/` beside its routes; never a record of `jobs/`, a
policy or a runner type, whose change would otherwise change the wire without anyone deciding so.
(That `jobs/`, `policy/`, `sandbox/` and `egress/` never import the API is import-linter's.)"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from executor_service.api import wire
from executor_service.api.app import create_app
from executor_service.api.wire import events
from executor_service.settings import Settings

OWN_CONTRACT = ("/v1/", "/healthz", "/readyz", "/metrics")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    # Building the app connects to nothing: its routes are all this test reads.
    state = tmp_path_factory.mktemp("state")
    return create_app(Settings(redis_url="redis://127.0.0.1:1/0", state_dir=Path(state)))


def types_in(annotation: Any) -> Iterator[type]:
    """The classes an annotation names, through unions, lists, tuples, Annotated and Literal."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel | enum.Enum):
        yield annotation
    for arg in get_args(annotation):
        yield from types_in(arg)


def reachable(roots: list[type]) -> set[type]:
    """Every model and enum a body can hold, however deeply nested."""
    seen: set[type] = set()
    stack = list(roots)
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if issubclass(current, BaseModel):
            for field in current.model_fields.values():
                stack.extend(types_in(field.annotation))
    return seen


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """Each route with its full path, through included routers."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield str(context.path), context.original_route


def bodies_of(route: APIRoute) -> list[type]:
    roots = list(types_in(route.response_model))
    for response in route.responses.values():
        roots.extend(types_in(response.get("model")))
    for param in route.dependant.body_params:
        roots.extend(types_in(param.field_info.annotation))
    return roots


def test_the_check_sees_the_contracts_bodies(app: FastAPI) -> None:
    # Guards the walk itself: were it to find nothing, the next test could not fail.
    found = {cls.__name__ for _, route in api_routes(app) for cls in reachable(bodies_of(route))}
    assert {"ExecutionCreate", "ExecutionView", "RunResult", "OutputFile", "EgressRecord"} <= found
    assert {"Destination", "SessionView", "PolicyList", "ErrorBody", "RunStatus"} <= found


def test_every_route_body_is_defined_in_the_api(app: FastAPI) -> None:
    misplaced = set()
    for path, route in api_routes(app):
        owner = f"{wire.__name__}." if path.startswith(OWN_CONTRACT) else "executor_service.api."
        for cls in reachable(bodies_of(route)):
            if not cls.__module__.startswith(owner):
                misplaced.add(f"{path}: {cls.__module__}.{cls.__qualname__}")
    assert not misplaced, "bodies defined outside the API's wire modules"


def test_the_check_tells_a_record_from_a_wire_model() -> None:
    # A body nesting a record would be caught: the record's module is outside the API.
    from executor_service.jobs.execution import Execution

    class Leaky(BaseModel):
        item: list[Execution] | None

    modules = {cls.__module__ for cls in reachable([Leaky])}
    assert "executor_service.jobs.execution" in modules


def test_event_payloads_are_defined_in_the_wire_modules() -> None:
    payloads = reachable([events.StateEvent, events.OutputEvent])
    assert all(cls.__module__.startswith(f"{wire.__name__}.") for cls in payloads)
