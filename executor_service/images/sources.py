"""What an image is built from, as one digest: a changed file, base or version means a rebuild."""

from __future__ import annotations

import hashlib
from pathlib import Path

from executor_service.errors import ConfigError
from executor_service.sandbox.catalogue import ImageSpec

# Set by each image's Dockerfile (its catalogue name) and by the builder (the digest below).
IMAGE_LABEL = "agent-sandbox.image"
SOURCE_HASH_LABEL = "agent-sandbox.source-hash"
# Bump when the way images are built changes (build arguments, labels), so every image rebuilds.
_RECIPE = "1"


def source_hash(folder: Path, *, base_id: str, spec: ImageSpec) -> str:
    """A digest of everything an image is built from: its folder's files, base and version."""
    if not (folder / "Dockerfile").is_file():
        raise ConfigError(f"{folder}: no Dockerfile for this catalogue image")
    digest = hashlib.sha256()
    for part in (_RECIPE, base_id, spec.version):
        digest.update(part.encode() + b"\0")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
