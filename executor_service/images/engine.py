"""The build tooling's own Docker client, and the one place its engine errors are translated."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import docker
import docker.errors
import requests
from docker.models.images import Image

from executor_service.errors import SandboxError, ServiceError
from executor_service.settings import Settings

# Builds and imports stream for minutes; the long timeout bounds a silent engine, not work.
BUILD_TIMEOUT_S = 600


@contextmanager
def build_client(settings: Settings) -> Iterator[docker.DockerClient]:
    """A client on the engine named by settings (or DOCKER_HOST), closed on leaving."""
    if settings.docker_url:
        client = docker.DockerClient(base_url=settings.docker_url, timeout=BUILD_TIMEOUT_S)
    else:
        client = docker.from_env(timeout=BUILD_TIMEOUT_S)
    try:
        yield client
    finally:
        client.close()


@contextmanager
def docker_errors() -> Iterator[None]:
    """Translate the engine's errors (docker-py's own, or the HTTP layer's) into SandboxError."""
    try:
        yield
    except ServiceError:
        raise
    except docker.errors.DockerException as exc:
        raise SandboxError(f"Docker engine: {exc}") from exc
    except requests.RequestException as exc:
        raise SandboxError(f"cannot talk to the Docker engine: {exc}") from exc


def find_image(client: docker.DockerClient, ref: str) -> Image | None:
    """The image tagged `ref`, or None when the engine has no such image."""
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None
