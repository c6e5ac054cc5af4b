"""Every attack in this suite runs against both runtimes, runc and gVisor (runsc), and both ways
a single-use sandbox runs code: `docker exec` in a container started for the run (the way of an
image without Python), and the launcher (sandbox/launcher.py), which waits in a pool's members
and in any single-use sandbox of a Python image without egress."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import docker
import pytest

from executor_service.sandbox.docker_runner import DockerRunner
from executor_service.sandbox.runner import Sandbox
from executor_service.sandbox.spec import SandboxConfig
from executor_service.settings import Settings
from tests.conftest import missing

RUNTIMES = ("runc", "runsc")


class MemberRunner(DockerRunner):
    """Each single-use sandbox is made as a pool member is (a launcher waits in it), without
    the pool's timing: what a pool hands out, every time."""

    def prepare(
        self, config: SandboxConfig, *, single_use: bool = True, lifetime_s: float | None = None
    ) -> Sandbox:
        if not single_use or lifetime_s is not None or config.egress_dir is not None:
            return super().prepare(config, single_use=single_use, lifetime_s=lifetime_s)
        return self.prepare_member(
            config, lifetime_s=config.limits.wall_time_s, labels=config.labels
        )


class ExecRunner(DockerRunner):
    """Each single-use sandbox runs its code through `docker exec`, as on an image without
    Python, even on the Python image (whose sandboxes would otherwise wait with the launcher)."""

    def prepare(
        self, config: SandboxConfig, *, single_use: bool = True, lifetime_s: float | None = None
    ) -> Sandbox:
        if single_use:
            config = replace(config, ready_python=False)
        return super().prepare(config, single_use=single_use, lifetime_s=lifetime_s)


@pytest.fixture(scope="session", params=RUNTIMES)
def runtime(request: pytest.FixtureRequest, docker_client: docker.DockerClient) -> str:
    chosen: str = request.param
    if chosen not in docker_client.info().get("Runtimes", {}):
        missing(f"the engine has no runtime {chosen} (run scripts/setup.sh as root)")
    return chosen


@pytest.fixture(scope="session", params=("exec", "launcher"))
def runner(
    request: pytest.FixtureRequest, docker_client: docker.DockerClient, settings: Settings
) -> Iterator[DockerRunner]:
    made: DockerRunner = ExecRunner(
        docker_client, reap_grace_s=settings.reap_grace_s, instance=settings.instance
    )
    if request.param == "launcher":
        made = MemberRunner(docker_client, reap_grace_s=settings.reap_grace_s)
    yield made
    made.close()
