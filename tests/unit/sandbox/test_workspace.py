"""Workspace paths and tar streams."""

from __future__ import annotations

import io
import tarfile

import pytest

from executor_service.errors import UnsafePath
from executor_service.sandbox.workspace import pack, safe_relative_path


@pytest.mark.parametrize(
    "bad", ["", "/etc/passwd", "../x", "a/../../x", "a\\b", "nul\x00", ".", "x" * 300]
)
def test_unsafe_paths_are_refused(bad: str) -> None:
    with pytest.raises(UnsafePath):
        safe_relative_path(bad)


@pytest.mark.parametrize(("raw", "clean"), [("a.py", "a.py"), ("./d/b.txt", "d/b.txt")])
def test_plain_paths_are_normalised(raw: str, clean: str) -> None:
    assert safe_relative_path(raw) == clean


def test_pack_writes_regular_files_under_checked_paths() -> None:
    data = pack({"a.txt": b"hello", "./d/b.bin": b"x" * 100})
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = {member.name: member for member in archive.getmembers()}
        assert set(members) == {"a.txt", "d/b.bin"}
        assert all(member.isreg() and member.mode == 0o644 for member in members.values())
        extracted = archive.extractfile(members["a.txt"])
        assert extracted is not None
        assert extracted.read() == b"hello"


def test_pack_refuses_an_escaping_name() -> None:
    with pytest.raises(UnsafePath):
        pack({"ok.txt": b"", "../x": b""})
