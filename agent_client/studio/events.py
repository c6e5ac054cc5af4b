"""The wire shape of a run's events, as the page streams them and history stores them.

Every event is a JSON object with ``seq`` (0, 1, ...), ``kind``, ``at`` (ISO time) and
``elapsed_s`` (since the previous event: the time a turn took). Kinds:

- ``message``: a team message or event, ``message`` as the library dumps it (``type``,
  ``source``, ``content``, ``models_usage`` with the turn's tokens, ...).
- ``execution``: a sandbox run as the service reported it, sent again when its state changes:
  ``id``, ``state``, ``status``, ``exit_code``, ``stdout``, ``stderr``, ``wall_time_s``,
  ``files`` (``id``, ``path``, ``size_bytes``, ``truncated``, ``error``).
- ``execution_cancel``: the studio asked the service to cancel execution ``id``.
- ``input_request`` / ``input_answered``: a user proxy waits for the page (``request_id``).
- ``end``: the last event: ``status`` (finished, stopped, failed), ``stop_reason``, ``error``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent_client.messages import AnyMessage
from agent_client.service.models import Execution


def message_event(item: AnyMessage) -> dict[str, Any]:
    return {"kind": "message", "message": item.model_dump(mode="json")}


def execution_event(execution: Execution, file_ids: Sequence[str | None]) -> dict[str, Any]:
    """``file_ids`` are the studio's ids of ``result.files`` in order (None: not stored)."""
    result = execution.result
    files = []
    if result is not None:
        for file, file_id in zip(result.files, file_ids, strict=True):
            files.append(
                {
                    "id": file_id,
                    "path": file.path,
                    "size_bytes": file.size_bytes,
                    "truncated": file.truncated,
                    "error": file.error,
                }
            )
    return {
        "kind": "execution",
        "id": execution.id,
        "language": execution.language,
        "state": execution.state,
        "status": result.status if result else None,
        "exit_code": result.exit_code if result else None,
        "stdout": result.stdout if result else "",
        "stderr": result.stderr if result else "",
        "wall_time_s": result.wall_time_s if result else None,
        "message": (result.message if result else None)
        or (execution.error.message if execution.error else None),
        "files": files,
    }


def execution_cancel_event(execution_id: str) -> dict[str, Any]:
    return {"kind": "execution_cancel", "id": execution_id}


def input_request_event(request_id: str, prompt: str) -> dict[str, Any]:
    return {"kind": "input_request", "request_id": request_id, "prompt": prompt}


def input_answered_event(request_id: str) -> dict[str, Any]:
    return {"kind": "input_answered", "request_id": request_id}


def end_event(status: str, stop_reason: str | None, error: str | None) -> dict[str, Any]:
    return {"kind": "end", "status": status, "stop_reason": stop_reason, "error": error}
