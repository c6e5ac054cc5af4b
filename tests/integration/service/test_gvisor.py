"""The strict-gvisor policy over the real API: code runs on gVisor's kernel, not the host's."""

from __future__ import annotations

import os

import docker
import httpx
import pytest

from tests.conftest import missing
from tests.integration.service.stack import ServiceStack

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.e2e]

# What the kernel says it is: gVisor answers with its own fixed version, runc with the host's.
KERNEL = "import os\nprint(os.uname().release)\nprint(open('/proc/version').read().strip())\n"


def run(stack: ServiceStack, policy: str) -> list[str]:
    response = httpx.post(
        f"{stack.url}/v1/executions",
        json={"language": "python", "code": KERNEL, "policy": policy, "wait": True},
        headers=stack.key("acme"),
        timeout=90,
    )
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["status"] == "ok", result
    lines: list[str] = result["stdout"].splitlines()
    return lines


def test_strict_gvisor_runs_the_code_on_gvisors_kernel(
    stack: ServiceStack, docker_client: docker.DockerClient
) -> None:
    if "runsc" not in docker_client.info().get("Runtimes", {}):
        missing("the engine has no runtime runsc (run scripts/setup.sh as root)")
    host = os.uname().release
    # The same code under strict (runc) sees the host's kernel: the check below can tell them apart.
    assert run(stack, "strict")[0] == host
    release, version = run(stack, "strict-gvisor")
    assert release != host
    assert host not in version
    # How gVisor's kernel names itself (Debian's runsc 2022-12: "4.4.0 #1 SMP Sun Jan 10 ...").
    assert version.startswith(f"Linux version {release} #1 SMP")


def test_strict_gvisor_refuses_a_pids_limit_gvisor_cannot_start_with(stack: ServiceStack) -> None:
    response = httpx.post(
        f"{stack.url}/v1/executions",
        json={
            "language": "python",
            "code": "print(1)",
            "policy": "strict-gvisor",
            "limits": {"pids": 32},
        },
        headers=stack.key("acme"),
        timeout=30,
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "limits.pids"
