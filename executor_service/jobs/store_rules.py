"""What every store implementation shares: the refusals at admission (one wording, one pause to
suggest), what a kept result costs, and how long one blocking read may wait."""

from __future__ import annotations

from executor_service.errors import Overloaded, QuotaExceeded, SessionBusy
from executor_service.jobs.execution import Execution
from executor_service.jobs.tenant import ApiKey

RETRY_AFTER_S = 5
MAX_BLOCK_S = 2.0  # a long wait is a loop of these; Redis' socket timeout is well above it


def stored_size(record: Execution, as_json: str | None = None) -> int:
    """What an ended record costs the store: its JSON (`as_json`, when the caller has it at hand),
    plus its output again in the event stream."""
    size = len(record.model_dump_json() if as_json is None else as_json)
    if record.result is not None:
        size += len(record.result.stdout.encode()) + len(record.result.stderr.encode())
    return size


def queue_full() -> Overloaded:
    return Overloaded("the queue is full; retry later", retry_after_s=RETRY_AFTER_S)


def over_concurrency(key: ApiKey) -> QuotaExceeded:
    return QuotaExceeded(
        f"at most {key.max_concurrency} executions may be queued or running for this key; "
        "wait for one to end",
        retry_after_s=RETRY_AFTER_S,
    )


def over_stored_bytes(key: ApiKey, result_ttl_s: int) -> QuotaExceeded:
    return QuotaExceeded(
        f"this key's stored results are over its {key.max_stored_bytes} bytes; they expire "
        f"{result_ttl_s} s after they end",
        retry_after_s=RETRY_AFTER_S * 12,
    )


def session_busy() -> SessionBusy:
    return SessionBusy("another execution of this session is queued or running", field="session_id")


def over_sessions(limit: int) -> QuotaExceeded:
    return QuotaExceeded(
        f"this key may keep at most {limit} sessions open; delete one first",
        retry_after_s=RETRY_AFTER_S,
    )
