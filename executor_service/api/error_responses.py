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
    415: "unsupported_media_type",
}

JSON_HINT = "send the body as JSON with the header Content-Type: application/json"


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


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"


def _unreadable_body(request: Request, exc: RequestValidationError) -> tuple[int, str] | None:
    """(status, message) when the body could not be read as JSON at all, else None.

    FastAPI reports these as schema errors that mislead: a body sent without a JSON content
    type is kept as bytes ("body: Input should be a valid dictionary"), and a JSON syntax error
    puts the character offset where a field name goes ("body.22"). Both say here what to fix.
    """
    first = exc.errors()[0] if exc.errors() else {}
    loc = tuple(first.get("loc", ()))
    if first.get("type") == "json_invalid" and len(loc) == 2 and isinstance(loc[1], int):
        text = exc.body if isinstance(exc.body, str) else ""
        reason = str(first.get("ctx", {}).get("error", "invalid syntax"))
        return 422, f"the body is not valid JSON: {reason} at {_position(text, loc[1])}"
    if loc != ("body",):
        return None
    content_type = request.headers.get("content-type", "")
    if isinstance(exc.body, bytes) and not _is_json(content_type):
        sent = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
        return 415, f"the body was sent with {sent}; {JSON_HINT}"
    if first.get("type") == "missing":
        return 422, f"the request has no body; {JSON_HINT}"
    return None


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
        unreadable = _unreadable_body(request, exc)
        if unreadable is not None:
            status, text = unreadable
            code = "validation_error" if status == 422 else HTTP_CODES[status]
            return error_response(status, code, text, shape=shape(request))
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
