"""Annotated dependencies: the app's services, and the caller's key (auth -> tenant)."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from executor_service.api.services import Services
from executor_service.errors import Unauthorized
from executor_service.jobs.tenant import ApiKey

_bearer = HTTPBearer(auto_error=False, description="An API key from `executor-service keys create`")


def _services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


ServicesDep = Annotated[Services, Depends(_services)]


def _current_key(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("send Authorization: Bearer <key>")
    record = services.store.key_for(credentials.credentials)
    if record is None:
        raise Unauthorized("unknown or revoked key")
    return record


CurrentKey = Annotated[ApiKey, Depends(_current_key)]
