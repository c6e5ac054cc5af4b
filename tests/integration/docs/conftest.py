"""The API as a real process for the docs tests: `api` (Redis and the API alone, no worker) is
enough for pages; `stack` (the whole service) runs what the README shows."""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import httpx
import pytest

from tests.integration.service.stack import ServiceStack, service_stack
from tests.unit.service.redis_server import running_redis


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    """Serves /docs, /redoc and /openapi.json; nothing here runs code, so no worker."""
    with running_redis() as redis:
        running = ServiceStack(redis, tmp_path_factory.mktemp("docs-api"), {})
        try:
            running.start_api()
            _wait_healthy(running)
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: docker.DockerClient,
    built_images: dict[str, str],
) -> Iterator[ServiceStack]:
    with service_stack(tmp_path_factory.mktemp("readme-service")) as running:
        yield running


def _wait_healthy(running: ServiceStack, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{running.url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise RuntimeError(f"API not healthy: {last}\n{running.logs()}")
