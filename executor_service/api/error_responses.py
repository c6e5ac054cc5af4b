"""The one place errors become HTTP responses, all as {"error": {code, message, field}}.

The foreign protocols' routes (Piston, Judge0) are the exception: their clients parse their own
server's error form, so each protocol registers an ErrorShape for its path prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from executor_service.api.schemas import ErrorBody, ErrorDetail
from executor_service.errors import ServiceError
from executor_service.jobs.store_rules import RETRY_AFTER_S

log = structlog.get_logger(__name__)

# Documented on every route so the OpenAPI page shows the shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        401: "No key, or an unknown one",
        404: "Unknown id, or another tenant's",
        422: "A field is malformed or not acceptable",
    }.items()
}


HTTP_CODES = {
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


# (status, code, message, field) -> the status and JSON body a protocol's clients expect.
ErrorRender = Callable[[int, str, str, str | None], tuple[int, Any]]


@dataclass(frozen=True)
class ErrorShape:
    """A foreign protocol's own error form, used for every path under `prefix`."""

    prefix: str
    render: ErrorRender

    def covers(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")


def shape_for(path: str, shapes: Sequence[ErrorShape]) -> ErrorShape | None:
    return next((shape for shape in shapes if shape.covers(path)), None)


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    retry_after_s: int | None = None,
    *,
    shape: ErrorShape | None = None,
) -> JSONResponse:
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    if shape is not None:
        status, content = shape.render(status, code, message, field)
        return JSONResponse(content, status_code=status, headers=headers)
    body = ErrorBody(error=ErrorDetail(code=code, message=message, field=field))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str | None:
    # The first element says where (body, query, path, header); the caller knows the field.
    parts = [str(part) for part in loc[1:]] if len(loc) > 1 else [str(part) for part in loc]
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI, shapes: Sequence[ErrorShape] = ()) -> None:
    """`shapes`: the foreign protocols' error forms by path prefix; any other path gets ours."""

    def shape(request: Request) -> ErrorShape | None:
        return shape_for(request.url.path, shapes)

    @app.exception_handler(ServiceError)
    def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        if exc.status_code >= 500:
            log.warning("request failed", code=exc.code, error=exc.message)
        return error_response(
            exc.status_code,
            exc.code,
            exc.message,
            exc.field,
            exc.retry_after_s,
            shape=shape(request),
        )

    @app.exception_handler(RequestValidationError)
    def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = _field(tuple(first.get("loc", ())))
        message = str(first.get("msg", "invalid request"))
        return error_response(
            422, "validation_error", f"{field}: {message}", field, shape=shape(request)
        )

    @app.exception_handler(StarletteHTTPException)
    def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "invalid_request")
        message = str(exc.detail)
        response = error_response(exc.status_code, code, message, shape=shape(request))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value  # e.g. Allow on a 405
        return response

    @app.exception_handler(RedisError)
    def _store_error(request: Request, exc: RedisError) -> JSONResponse:
        log.warning("store unavailable", error_type=type(exc).__name__)
        return error_response(
            503,
            "store_unavailable",
            "the service's store did not answer; retry shortly",
            retry_after_s=RETRY_AFTER_S,
            shape=shape(request),
        )

    @app.exception_handler(Exception)
    def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", error_type=type(exc).__name__, exc_info=exc)
        return error_response(
            500,
            "internal_error",
            "an unexpected error; see the service log",
            shape=shape(request),
        )
