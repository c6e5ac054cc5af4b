"""Workspace paths and tar streams."""

from __future__ import annotations

import io
import tarfile

import pytest

from executor_service.errors import PayloadTooLarge, UnsafePath
from executor_service.sandbox.workspace import pack, read_single, safe_relative_path, unpack


@pytest.mark.parametrize(
    "bad", ["", "/etc/passwd", "../x", "a/../../x", "a\\b", "nul\x00", ".", "x" * 300]
)
def test_unsafe_paths_are_refused(bad: str) -> None:
    with pytest.raises(UnsafePath):
        safe_relative_path(bad)


@pytest.mark.parametrize(("raw", "clean"), [("a.py", "a.py"), ("./d/b.txt", "d/b.txt")])
def test_plain_paths_are_normalised(raw: str, clean: str) -> None:
    assert safe_relative_path(raw) == clean


def test_pack_then_unpack_round_trips_and_caps() -> None:
    data = pack({"a.txt": b"hello", "d/b.bin": b"x" * 100})
    items = {item.path: item for item in unpack(data, max_file_bytes=10, max_files=10)}
    assert items["a.txt"].content == b"hello"
    assert items["d/b.bin"].truncated is True
    assert items["d/b.bin"].size_bytes == 100


def test_links_in_a_tar_are_skipped() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        link = tarfile.TarInfo("link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    assert list(unpack(buffer.getvalue(), max_file_bytes=10, max_files=10)) == []
    with pytest.raises(FileNotFoundError):
        read_single(buffer.getvalue(), "link", max_bytes=10)


def test_read_single_refuses_oversize() -> None:
    with pytest.raises(PayloadTooLarge):
        read_single(pack({"a": b"x" * 11}), "a", max_bytes=10)
