"""Fixtures for the opt-in checks against a real local model (scripts/local-model.sh).

The model server is not started here: building it takes minutes. ``local_model`` skips when no
server answers at the README's model URL (or AGENT_SANDBOX_LLM_URL), and fails instead under
AGENT_SANDBOX_REQUIRE_LLM=1, so a run that was meant to check the model cannot pass without one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import docker
import httpx
import pytest

from tests.integration.service.stack import service_stack
from tests.llm.readme_command import ReadmeCommand, readme_cli_command

REQUIRE_LLM = os.environ.get("AGENT_SANDBOX_REQUIRE_LLM", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def readme_command() -> ReadmeCommand:
    """The README's command; AGENT_SANDBOX_LLM_URL points it at a server on another port (the
    server answers one request at a time, so a check beside a busy one gets its own)."""
    command = readme_cli_command()
    other_url = os.environ.get("AGENT_SANDBOX_LLM_URL")
    return command.with_base_url(other_url) if other_url else command


@pytest.fixture(scope="session")
def local_model(readme_command: ReadmeCommand) -> ReadmeCommand:
    """The README's command, once its model server lists the model the command names."""
    try:
        # Even /v1/models waits behind a running generation: allow for one.
        listed = httpx.get(f"{readme_command.base_url}/models", timeout=120).json()
    except (httpx.HTTPError, ValueError) as exc:
        reason = (
            f"no model server at {readme_command.base_url} ({exc!r}): "
            "start one with `bash scripts/local-model.sh`"
        )
        if REQUIRE_LLM:
            pytest.fail(f"AGENT_SANDBOX_REQUIRE_LLM is set: {reason}")
        pytest.skip(reason)
    names = [model["id"] for model in listed.get("data", [])]
    assert readme_command.model in names, (
        f"{readme_command.base_url} serves {names}, not the README's {readme_command.model}"
    )
    return readme_command


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: docker.DockerClient,
    built_images: dict[str, str],
) -> Iterator[tuple[str, str]]:
    """The real service as the integration tests start it: (base_url, api_key)."""
    with service_stack(tmp_path_factory.mktemp("llm-service")) as running:
        headers = running.key("llm")
        yield running.url, headers["Authorization"].removeprefix("Bearer ")
