"""Annotated dependencies: the app's services, and the caller's key (auth -> tenant).

A key is checked once per request: by AuthBeforeBody for requests that carry a body (so an
unknown caller is refused before a byte of it is read), by `_current_key` for the rest.

Both dependencies are coroutines on purpose: FastAPI runs a plain function dependency in its
thread pool, a round trip between threads that cost more CPU per request than what it ran. A
key found in the cache is checked on the event loop; only a lookup in the store takes a thread.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Annotated, cast

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from executor_service.api.compat import JUDGE0_PREFIX, PISTON_PREFIX
from executor_service.api.key_cache import cached_record
from executor_service.api.services import Services
from executor_service.errors import Unauthorized
from executor_service.jobs.store import KeyStore
from executor_service.jobs.tenant import ApiKey

_bearer = HTTPBearer(auto_error=False, description="An API key from `executor-service keys create`")
KEY_STATE = "api_key"


def authenticate(keys: KeyStore, authorization: str | None) -> ApiKey:
    """The key record for an `Authorization` header's value; Unauthorized for anything else."""
    return authenticate_request(keys, "/", {"authorization": authorization or ""})


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _basic_key(credentials: str) -> str | None:
    try:
        user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return password or user or None


def presented_key(path: str, headers: Mapping[str, str]) -> str | None:
    """The key a request carries, from where its client can put it.

    `Authorization: Bearer <key>` everywhere. On a foreign protocol's routes also where its own
    clients send one: Judge0's `X-Auth-Token`; and HTTP Basic on Piston's, because the pistonapi
    client takes nothing but a base URL, and requests sends that URL's `user:key@` as Basic (the
    key is the password, or the user name when there is no password).
    """
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return credentials
    if _under(path, JUDGE0_PREFIX):
        return headers.get("x-auth-token", "").strip() or None
    if _under(path, PISTON_PREFIX) and scheme.lower() == "basic":
        return _basic_key(credentials)
    return None


def _how_to_send(path: str) -> str:
    if _under(path, JUDGE0_PREFIX):
        return "send X-Auth-Token: <key> (or Authorization: Bearer <key>)"
    if _under(path, PISTON_PREFIX):
        return "send Authorization: Bearer <key>, or put key:<key>@ in the base URL"
    return "send Authorization: Bearer <key>"


def authenticate_request(keys: KeyStore, path: str, headers: Mapping[str, str]) -> ApiKey:
    """The key record a request to `path` presents; Unauthorized for none or an unknown one."""
    key = presented_key(path, headers)
    if key is None:
        raise Unauthorized(_how_to_send(path))
    record = keys.get(key)
    if record is None:
        raise Unauthorized("unknown or revoked key")
    return record


async def authenticate_soon(keys: KeyStore, path: str, headers: Mapping[str, str]) -> ApiKey:
    """`authenticate_request` for the event loop: a cached key without leaving it, else the
    lookup in a worker thread."""
    key = presented_key(path, headers)
    if key is None:
        raise Unauthorized(_how_to_send(path))
    record = cached_record(keys, key)
    if record is not None:
        return record
    return await anyio.to_thread.run_sync(authenticate_request, keys, path, headers)


async def _services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


ServicesDep = Annotated[Services, Depends(_services)]


async def _current_key(
    request: Request,
    services: ServicesDep,
    # Declared for the OpenAPI page's "Authorize" button; the header is read below.
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    checked = request.scope.get("state", {}).get(KEY_STATE)
    if isinstance(checked, ApiKey):
        return checked
    return await authenticate_soon(services.stores.keys, request.url.path, request.headers)


CurrentKey = Annotated[ApiKey, Depends(_current_key)]
