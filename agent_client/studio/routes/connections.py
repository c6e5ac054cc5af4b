"""Connections: model endpoints and the sandbox service; keys go in and never come back out."""

from __future__ import annotations

import re
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from agent_client.studio.deps import Connections
from agent_client.studio.errors import EndpointNotFound, StudioError
from agent_client.studio.store import SANDBOX, Endpoint

router = APIRouter(prefix="/api/connections")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


class EndpointIn(BaseModel):
    """``key``: omit to keep the saved key, ``""`` to remove it; it is never sent back."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["model", "sandbox"]
    base_url: str = Field(min_length=1, pattern=r"^https?://")
    model: str | None = None
    key: str | None = None


@router.get("")
def list_endpoints(store: Connections) -> list[Endpoint]:
    return store.endpoints()


@router.put("/{name}")
def put_endpoint(name: str, body: EndpointIn, store: Connections) -> Endpoint:
    if not _NAME.match(name):
        raise StudioError(
            f"endpoint name {name!r} must match {_NAME.pattern} (lowercase, digits, dashes)"
        )
    if body.kind == "sandbox" and name != SANDBOX:
        raise StudioError(f"the sandbox service is the endpoint named {SANDBOX!r}")
    if body.kind == "model" and not body.model:
        raise StudioError("a model endpoint needs `model`, the model's name at that URL")
    return store.put_endpoint(name, body.kind, body.base_url, body.model, body.key)


@router.delete("/{name}", status_code=204)
def delete_endpoint(name: str, store: Connections) -> Response:
    if not store.delete_endpoint(name):
        raise EndpointNotFound(f"no endpoint named {name!r}")
    return Response(status_code=204)
