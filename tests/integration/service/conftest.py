"""One running service (Redis, a worker, the API) shared by this folder's tests."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.integration.service.stack import ServiceStack, service_stack


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: docker.DockerClient,
    built_images: dict[str, str],
) -> Iterator[ServiceStack]:
    with service_stack(tmp_path_factory.mktemp("service")) as running:
        yield running
