"""Fixtures for the agent e2e tests: the real service (as the service tests start it) and a
scripted OpenAI-compatible server on loopback.

``service`` gives (base_url, api_key). It is defined here until a shared fixture exists in
tests/conftest.py; then delete this one so both suites use the same running stack.
"""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.integration.service.stack import service_stack
from tests.support.scripted_openai import ScriptedOpenAI, scripted_openai


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: docker.DockerClient,
    built_images: dict[str, str],
) -> Iterator[tuple[str, str]]:
    with service_stack(tmp_path_factory.mktemp("agents-service")) as running:
        headers = running.key("agents")
        yield running.url, headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def llm() -> Iterator[ScriptedOpenAI]:
    with scripted_openai() as server:
        yield server
