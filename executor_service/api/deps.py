"""Annotated dependencies: the app's services, and the caller's key (auth -> tenant).

A key is checked once per request: by AuthBeforeBody for requests that carry a body (so an
unknown caller is refused before a byte of it is read), by `_current_key` for the rest.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from executor_service.api.services import Services
from executor_service.errors import Unauthorized
from executor_service.jobs.store import KeyStore
from executor_service.jobs.tenant import ApiKey

_bearer = HTTPBearer(auto_error=False, description="An API key from `executor-service keys create`")
KEY_STATE = "api_key"


def authenticate(keys: KeyStore, authorization: str | None) -> ApiKey:
    """The key record for an `Authorization` header's value; Unauthorized for anything else."""
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthorized("send Authorization: Bearer <key>")
    record = keys.get(credentials.strip())
    if record is None:
        raise Unauthorized("unknown or revoked key")
    return record


def _services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


ServicesDep = Annotated[Services, Depends(_services)]


def _current_key(
    request: Request,
    services: ServicesDep,
    # Declared for the OpenAPI page's "Authorize" button; the header is read below.
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    checked = request.scope.get("state", {}).get(KEY_STATE)
    if isinstance(checked, ApiKey):
        return checked
    return authenticate(services.stores.keys, request.headers.get("authorization"))


CurrentKey = Annotated[ApiKey, Depends(_current_key)]
