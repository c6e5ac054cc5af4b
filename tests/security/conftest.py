"""Every attack in this suite runs against both runtimes: runc and gVisor (runsc)."""

from __future__ import annotations

import docker
import pytest

from tests.conftest import missing

RUNTIMES = ("runc", "runsc")


@pytest.fixture(scope="session", params=RUNTIMES)
def runtime(request: pytest.FixtureRequest, docker_client: docker.DockerClient) -> str:
    chosen: str = request.param
    if chosen not in docker_client.info().get("Runtimes", {}):
        missing(f"the engine has no runtime {chosen} (run scripts/setup.sh as root)")
    return chosen
