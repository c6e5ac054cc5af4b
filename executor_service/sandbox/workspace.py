"""Moving files in and out of a sandbox's workspace as tar streams, with paths that cannot escape.

The workspace is a tmpfs inside the container, which `put_archive`/`get_archive` cannot reach (they
see the container's read-only root underneath), so files travel through `tar` run inside the sandbox
as the code's own user. Everything here is pure: bytes in, bytes out.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from executor_service.errors import PayloadTooLarge, UnsafePath

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


@dataclass(frozen=True)
class Extracted:
    path: str
    content: bytes
    size_bytes: int
    truncated: bool


def unpack(
    data: bytes, *, max_file_bytes: int, max_files: int, wanted: Iterable[str] | None = None
) -> Iterator[Extracted]:
    """Regular files from a tar stream; links and devices are skipped, never followed."""
    wanted_set = None if wanted is None else set(wanted)
    count = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as archive:
        for member in archive:
            if count >= max_files:
                return
            if not member.isreg():
                continue
            path = member.name.removeprefix("./")
            if wanted_set is not None and path not in wanted_set:
                continue
            stream = archive.extractfile(member)
            content = stream.read(max_file_bytes) if stream is not None else b""
            count += 1
            yield Extracted(
                path=path,
                content=content,
                size_bytes=member.size,
                truncated=member.size > max_file_bytes,
            )


def read_single(data: bytes, path: str, *, max_bytes: int) -> bytes:
    """The one regular file `path` from a tar stream, refusing it when larger than max_bytes."""
    for item in unpack(data, max_file_bytes=max_bytes, max_files=1, wanted=[path]):
        if item.truncated:
            raise PayloadTooLarge(
                f"{path} is {item.size_bytes} bytes, over the limit of {max_bytes}", field="path"
            )
        return item.content
    raise FileNotFoundError(path)
