"""A caller's file name checked by the sandbox's own rule, with the request field it came from."""

from __future__ import annotations

from executor_service.errors import UnsafePath
from executor_service.sandbox.workspace import safe_relative_path


def safe_workspace_path(path: str, *, field: str) -> str:
    """The normalised relative path; UnsafePath names `field` so the caller sees which one."""
    try:
        return safe_relative_path(path)
    except UnsafePath as exc:
        raise UnsafePath(exc.message, field=field) from exc
