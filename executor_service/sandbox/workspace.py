"""Workspace paths that cannot escape, and the tar that places a fresh sandbox's files.

The workspace is a tmpfs inside the container, which `put_archive`/`get_archive` cannot reach (they
see the container's read-only root underneath), so files travel through programs run inside the
sandbox as the code's own user: `tar` for a workspace no code has touched yet, and the shell
programs of `transfer` for everything else. Everything here is pure: bytes in, bytes out.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from pathlib import PurePosixPath

from executor_service.errors import UnsafePath

MAX_PATH_BYTES = 1024
MAX_NAME_BYTES = 255


def safe_relative_path(path: str) -> str:
    """Normalise a workspace path, refusing anything that could point outside the workspace."""
    if not path or "\x00" in path or "\\" in path:
        raise UnsafePath(f"file name {path!r} is empty or has a NUL or backslash", field="path")
    pure = PurePosixPath(path)
    if pure.is_absolute():
        raise UnsafePath(f"file name {path!r} must be relative to the workspace", field="path")
    parts = [part for part in pure.parts if part != "."]
    if not parts or ".." in parts:
        raise UnsafePath(f"file name {path!r} may not contain '..'", field="path")
    if len(path.encode()) > MAX_PATH_BYTES or any(
        len(part.encode()) > MAX_NAME_BYTES for part in parts
    ):
        raise UnsafePath(f"file name {path[:64]!r}... is too long", field="path")
    return "/".join(parts)


def pack(files: Mapping[str, bytes]) -> bytes:
    """A tar of regular files (mode 0644) under their checked relative paths."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for raw_path, content in files.items():
            info = tarfile.TarInfo(safe_relative_path(raw_path))
            info.size = len(content)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
