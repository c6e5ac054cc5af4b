"""What the image builder reads from disk: the host's apt mirror and an image folder's hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor_service.errors import ConfigError
from executor_service.images.base import DEFAULT_MIRROR, apt_mirror
from executor_service.images.sources import source_hash
from executor_service.sandbox.catalogue import ImageSpec, LanguageRuntime

SPEC = ImageSpec(
    version="1",
    languages={"sh": LanguageRuntime(file="main.sh", command=("sh", "main.sh"), version="x")},
)


def test_mirror_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian http://other/debian\n"
        "Suites: bookworm\n\nTypes: deb\nURIs: http://security.example/debian-security\n"
    )
    (tmp_path / "sources.list").write_text("deb http://legacy.example/debian bookworm main\n")
    assert apt_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_from_legacy_sources_list_with_options(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://legacy.example/debian bookworm main\n"
    )
    assert apt_mirror(tmp_path) == "http://legacy.example/debian"


def test_mirror_defaults_to_debian(tmp_path: Path) -> None:
    assert apt_mirror(tmp_path) == DEFAULT_MIRROR


def test_source_hash_follows_files_base_and_version(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    first = source_hash(tmp_path, base_id="sha256:a", spec=SPEC)
    assert source_hash(tmp_path, base_id="sha256:a", spec=SPEC) == first
    assert source_hash(tmp_path, base_id="sha256:b", spec=SPEC) != first
    bumped = SPEC.model_copy(update={"version": "2"})
    assert source_hash(tmp_path, base_id="sha256:a", spec=bumped) != first

    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "motd").write_text("hello\n")
    with_file = source_hash(tmp_path, base_id="sha256:a", spec=SPEC)
    assert with_file != first
    (tmp_path / "etc" / "motd").rename(tmp_path / "motd")
    assert source_hash(tmp_path, base_id="sha256:a", spec=SPEC) != with_file


def test_source_hash_needs_a_dockerfile(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no Dockerfile"):
        source_hash(tmp_path, base_id="sha256:a", spec=SPEC)
