"""Refuse an unknown caller, or a declared body over the bound, before a byte of it is read.

FastAPI reads a body before it runs dependencies, so a key checked there comes too late: a
stranger could make the API buffer hundreds of MB and only then hear 401. This middleware checks
the key of every /v1 request that may carry a body, and of the foreign protocols' routes (each
refused in its own error shape); a body without a declared length (chunked) is counted while it
streams by FastAPI's own `max_body_size`.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis import RedisError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from executor_service.api.compat import JUDGE0_PREFIX, PISTON_PREFIX
from executor_service.api.deps import KEY_STATE, authenticate_soon
from executor_service.api.error_responses import ErrorShape, error_response, shape_for
from executor_service.errors import ServiceError
from executor_service.jobs.store import KeyStore
from executor_service.jobs.store_rules import RETRY_AFTER_S

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
GUARDED_PREFIXES = ("/v1/", PISTON_PREFIX + "/", JUDGE0_PREFIX + "/")


class AuthBeforeBody:
    def __init__(
        self,
        app: ASGIApp,
        keys: KeyStore,
        max_body_bytes: int,
        shapes: Sequence[ErrorShape] = (),
    ) -> None:
        self._app = app
        self._keys = keys
        self._max_body_bytes = max_body_bytes
        self._shapes = tuple(shapes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in BODY_METHODS
            or not scope["path"].startswith(GUARDED_PREFIXES)
        ):
            await self._app(scope, receive, send)
            return
        path = scope["path"]
        shape = shape_for(path, self._shapes)
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body_bytes:
            response = error_response(
                413,
                "payload_too_large",
                f"the body is over {self._max_body_bytes} bytes",
                shape=shape,
            )
            await response(scope, receive, send)
            return
        try:
            record = await authenticate_soon(self._keys, path, headers)
        except ServiceError as exc:
            response = error_response(exc.status_code, exc.code, exc.message, shape=shape)
            await response(scope, receive, send)
            return
        except RedisError:
            response = error_response(
                503,
                "store_unavailable",
                "the service's store did not answer; retry shortly",
                retry_after_s=RETRY_AFTER_S,
                shape=shape,
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[KEY_STATE] = record
        await self._app(scope, self._counted(receive), send)

    def _counted(self, receive: Receive) -> Receive:
        limit = self._max_body_bytes
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"the body is over {limit} bytes")
            return message

        return counted
