"""The service's one exception tree; each error carries a stable code and an HTTP status.

    ServiceError
    ├── ConfigError            a bad settings value or policy file: start-up stops (500)
    ├── SandboxError           the engine failed us, not the user's code (503)
    │   └── ImageMissing       a policy names an image that is not built (503)
    ├── InvalidRequest         a field that is well-formed but not acceptable (422)
    │   ├── LimitAboveCeiling  a request tried to loosen a policy's limit (422)
    │   ├── UnsafePath         a file name escapes the workspace (422)
    │   └── UnknownLanguage    the policy does not run that language (422)
    ├── PayloadTooLarge        code, stdin or files over the policy's sizes (413)
    ├── Unauthorized           no key or an unknown key (401)
    ├── PolicyNotAllowed       the key's tenant may not use that policy (403)
    ├── NotFound               unknown id, or another tenant's (404)
    ├── Conflict               the resource is busy or in the wrong state (409)
    │   ├── SessionBusy        another execution of the session is queued or running (409)
    │   └── SessionEnded       the session expired or was deleted; open a new one (409)
    ├── QuotaExceeded          a bound of the key is reached (429, Retry-After)
    ├── Overloaded             the queue is too long, or no worker is free (503, Retry-After)
    └── StoreUnavailable       Redis did not answer (503, Retry-After)

What the user's code does (non-zero exit, timeout, out of memory) is a RunResult status, never
one of these.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the service raises on purpose."""

    code = "internal_error"
    status_code = 500

    def __init__(
        self, message: str, *, field: str | None = None, retry_after_s: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.retry_after_s = retry_after_s


class ConfigError(ServiceError):
    code = "config_error"
    status_code = 500


class SandboxError(ServiceError):
    code = "sandbox_error"
    status_code = 503


class ImageMissing(SandboxError):
    code = "image_missing"


class InvalidRequest(ServiceError):
    code = "invalid_request"
    status_code = 422


class LimitAboveCeiling(InvalidRequest):
    code = "limit_above_ceiling"


class UnsafePath(InvalidRequest):
    code = "unsafe_path"


class UnknownLanguage(InvalidRequest):
    code = "unknown_language"


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"
    status_code = 413


class Unauthorized(ServiceError):
    code = "unauthorized"
    status_code = 401


class PolicyNotAllowed(ServiceError):
    code = "policy_not_allowed"
    status_code = 403


class NotFound(ServiceError):
    code = "not_found"
    status_code = 404


class Conflict(ServiceError):
    code = "conflict"
    status_code = 409


class SessionBusy(Conflict):
    code = "session_busy"


class SessionEnded(Conflict):
    code = "session_ended"


class QuotaExceeded(ServiceError):
    code = "quota_exceeded"
    status_code = 429


class Overloaded(ServiceError):
    code = "overloaded"
    status_code = 503


class StoreUnavailable(ServiceError):
    code = "store_unavailable"
    status_code = 503


def _subclasses(cls: type[ServiceError]) -> list[type[ServiceError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


def error_for_code(code: str, message: str, *, field: str | None = None) -> ServiceError:
    """Rebuild an error from its wire code, so a worker's refusal reaches the API caller intact."""
    for cls in _subclasses(ServiceError):
        if cls.code == code:
            return cls(message, field=field)
    return ServiceError(message, field=field)
