"""The agent library's one exception tree, so callers catch by meaning rather than by backend.

    AgentClientError
    ├── ServiceError               the service refused a request (.code .status_code .field)
    │   ├── Unauthorized           401 unauthorized
    │   ├── PolicyNotAllowed       403 policy_not_allowed
    │   ├── NotFound               404 not_found
    │   ├── MethodNotAllowed       405 method_not_allowed (a client bug, never the caller's)
    │   ├── Conflict               409 conflict
    │   │   ├── SessionBusy        409 session_busy: the session runs another execution (retry)
    │   │   └── SessionEnded       409 session_ended: expired or deleted (open a new one)
    │   ├── PayloadTooLarge        413 payload_too_large
    │   ├── UnsupportedMediaType   415 unsupported_media_type (a client bug: body not JSON)
    │   ├── ValidationFailed       422 validation_error (.field is the dotted location)
    │   ├── InvalidRequest         422 invalid_request
    │   │   ├── LimitAboveCeiling  422 limit_above_ceiling
    │   │   ├── UnsafePath         422 unsafe_path
    │   │   └── UnknownLanguage    422 unknown_language
    │   ├── QuotaExceeded          429 quota_exceeded (.retry_after_s)
    │   ├── Overloaded             503 overloaded (.retry_after_s)
    │   ├── StoreUnavailable       503 store_unavailable: the service's Redis did not answer
    │   ├── SandboxFailure         503 sandbox_error
    │   │   └── ImageMissing       503 image_missing
    │   ├── InternalServerError    500 internal_error
    │   ├── InvalidResponse        the service answered something that is not the contract
    │   └── ServiceUnavailable     no answer at all: connection refused, reset, timed out
    ├── WaitTimeout                an execution was not final within the caller's wait
    ├── ModelError                 the model endpoint failed after its retries
    ├── ToolDefinitionError        a Python function cannot become a tool
    ├── SpecError                  a team spec is invalid or names something missing
    └── TeamError                  a team was used wrongly (two runs at once, bad handoff)

What generated code does (non-zero exit, timeout) is a result, never one of these.
"""

from __future__ import annotations


class AgentClientError(Exception):
    """Base of every error the library raises on purpose."""


class ServiceError(AgentClientError):
    """The execution service refused or failed a request; mirrors its JSON error shape."""

    code: str = "service_error"
    default_status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        field: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status_code = status_code if status_code is not None else self.default_status
        self.field = field
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        return f"{self.code}: {self.message}{where}"


class Unauthorized(ServiceError):
    code = "unauthorized"
    default_status = 401


class PolicyNotAllowed(ServiceError):
    code = "policy_not_allowed"
    default_status = 403


class NotFound(ServiceError):
    code = "not_found"
    default_status = 404


class MethodNotAllowed(ServiceError):
    code = "method_not_allowed"
    default_status = 405


class Conflict(ServiceError):
    code = "conflict"
    default_status = 409


class SessionBusy(Conflict):
    code = "session_busy"


class SessionEnded(Conflict):
    """The session expired or was deleted: retrying cannot help, only a new session can."""

    code = "session_ended"


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"
    default_status = 413


class UnsupportedMediaType(ServiceError):
    code = "unsupported_media_type"
    default_status = 415


class ValidationFailed(ServiceError):
    code = "validation_error"
    default_status = 422


class InvalidRequest(ServiceError):
    code = "invalid_request"
    default_status = 422


class LimitAboveCeiling(InvalidRequest):
    code = "limit_above_ceiling"


class UnsafePath(InvalidRequest):
    code = "unsafe_path"


class UnknownLanguage(InvalidRequest):
    code = "unknown_language"


class QuotaExceeded(ServiceError):
    code = "quota_exceeded"
    default_status = 429


class Overloaded(ServiceError):
    code = "overloaded"
    default_status = 503


class StoreUnavailable(ServiceError):
    """The service is up but its store is not: transient, retry after ``retry_after_s``."""

    code = "store_unavailable"
    default_status = 503


class SandboxFailure(ServiceError):
    code = "sandbox_error"
    default_status = 503


class ImageMissing(SandboxFailure):
    code = "image_missing"


class InternalServerError(ServiceError):
    code = "internal_error"
    default_status = 500


class InvalidResponse(ServiceError):
    code = "invalid_response"


class ServiceUnavailable(ServiceError):
    code = "service_unavailable"


class WaitTimeout(AgentClientError):
    """An execution was still queued or running when the caller's wait ran out."""

    def __init__(self, execution_id: str, waited_s: float) -> None:
        super().__init__(f"execution {execution_id} not final after {waited_s:g}s")
        self.execution_id = execution_id
        self.waited_s = waited_s


class ModelError(AgentClientError):
    """The model endpoint failed after its own retries (status_code None: no HTTP answer)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ToolDefinitionError(AgentClientError):
    """A Python function cannot be described as a tool (missing annotations, bad name)."""


class SpecError(AgentClientError):
    """A team spec is invalid or names an import, env var or agent that does not exist."""


class TeamError(AgentClientError):
    """A team was used in a way it cannot honour."""


SERVICE_ERRORS_BY_CODE: dict[str, type[ServiceError]] = {
    cls.code: cls
    for cls in (
        Unauthorized,
        PolicyNotAllowed,
        NotFound,
        MethodNotAllowed,
        Conflict,
        SessionBusy,
        SessionEnded,
        PayloadTooLarge,
        UnsupportedMediaType,
        ValidationFailed,
        InvalidRequest,
        LimitAboveCeiling,
        UnsafePath,
        UnknownLanguage,
        QuotaExceeded,
        Overloaded,
        StoreUnavailable,
        SandboxFailure,
        ImageMissing,
        InternalServerError,
    )
}
