"""Builds the catalogue's sandbox images locally, skipping those whose sources did not change."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import docker
import docker.errors

from executor_service.errors import ConfigError, SandboxError
from executor_service.images.base import OFFLINE_BASE, Log, ensure_base_image
from executor_service.images.engine import build_client, docker_errors, find_image
from executor_service.images.sources import SOURCE_HASH_LABEL, source_hash
from executor_service.sandbox.catalogue import Catalogue, ImageSpec, load_catalogue
from executor_service.settings import Settings


def build_images(
    settings: Settings,
    names: Sequence[str] | None = None,
    *,
    force: bool = False,
    log: Log = print,
    offline_base: str = OFFLINE_BASE,
) -> list[str]:
    """Build the named catalogue images (all by default) and return the references rebuilt.

    An image whose tag already carries the source hash of its folder and base is skipped, so a
    second call returns an empty list and costs a few inspections. `offline_base` names the tag
    under which a debootstrapped base is cached (tests use another one).

    Raises:
        ConfigError: the catalogue is unreadable or names an image it does not hold.
        SandboxError: the engine, debootstrap or a build failed.
    """
    catalogue = load_catalogue(settings.images_dir)
    selected = _select(catalogue, names)
    built: list[str] = []
    with docker_errors(), build_client(settings) as client:
        base = ensure_base_image(client, log=log, offline_base=offline_base)
        base_id: str = client.images.get(base).attrs["Id"]
        for name in selected:
            spec = catalogue.images[name]
            ref = catalogue.image_ref(settings.image_prefix, name)
            folder = settings.images_dir / name
            digest = source_hash(folder, base_id=base_id, spec=spec)
            previous = find_image(client, ref)
            if not force and previous and previous.labels.get(SOURCE_HASH_LABEL) == digest:
                log(f"{ref}: up to date ({digest[:12]}), skipped")
                continue
            log(f"{ref}: building from {folder} on {base}")
            started = time.monotonic()
            _build(client, folder, ref, base=base, spec=spec, digest=digest, log=log)
            log(f"{ref}: built in {time.monotonic() - started:.1f} s")
            if previous is not None:
                _drop_if_untagged(client, previous.attrs["Id"], log)
            built.append(ref)
    return built


def _select(catalogue: Catalogue, names: Sequence[str] | None) -> list[str]:
    if not names:
        return list(catalogue.images)
    unknown = [name for name in names if name not in catalogue.images]
    if unknown:
        known = ", ".join(catalogue.images)
        raise ConfigError(f"unknown image {unknown[0]!r}; the catalogue holds: {known}")
    return list(dict.fromkeys(names))


def _build(
    client: docker.DockerClient,
    folder: Path,
    ref: str,
    *,
    base: str,
    spec: ImageSpec,
    digest: str,
    log: Log,
) -> None:
    # The low-level call streams the builder's output as it comes; images.build() only returns
    # the log once the build is over.
    chunks = client.api.build(
        path=str(folder),
        tag=ref,
        buildargs={"BASE_IMAGE": base, "IMAGE_VERSION": spec.version},
        labels={SOURCE_HASH_LABEL: digest},
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
    )
    for chunk in chunks:
        if "error" in chunk:
            raise SandboxError(f"building {ref}: {str(chunk['error']).strip()}")
        text = chunk.get("stream") or chunk.get("status")
        if text:
            for line in str(text).splitlines():
                if line.strip():
                    log(line)
    image = find_image(client, ref)
    if image is None or image.labels.get(SOURCE_HASH_LABEL) != digest:
        raise SandboxError(f"building {ref}: the engine reported success but has no such image")


def _drop_if_untagged(client: docker.DockerClient, image_id: str, log: Log) -> None:
    """Remove the image a rebuild replaced, unless it is still tagged or used by a container."""
    try:
        old = client.images.get(image_id)
        if old.tags:
            return
        client.images.remove(image_id)
        log(f"removed the replaced image {image_id[:19]}")
    except docker.errors.ImageNotFound:
        return
    except docker.errors.APIError as exc:
        log(f"kept the replaced image {image_id[:19]}: {exc.explanation or exc}")
