"""compose.yaml, for real: its images built, the stack up under docker-compose, print(1) through it.

The work is scripts/compose-check.sh (an operator can run it by hand too); these tests run it and
read its verdict. It brings up its own project, port and sandbox instance, so it runs beside the
rest of the suite, and it tears everything down whatever happens.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import docker
import pytest

from tests.conftest import missing

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[3]
# The first run on a machine builds both images and fetches the wheels (about two minutes here);
# later runs hit the layer cache and take under a minute.
CHECK_TIMEOUT_S = 900
PREREQUISITE_MISSING = 2


def compose_command() -> list[str]:
    """Debian's docker-compose 1.29 where installed, else the Compose v2 plugin."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ["docker", "compose"]
    missing("neither docker-compose (apt-get install docker-compose) nor `docker compose`")
    raise AssertionError("unreachable")


def test_compose_file_is_accepted_as_it_is() -> None:
    """No top-level `name:` (1.29 refuses it) and nothing else either Compose rejects."""
    result = subprocess.run(
        [*compose_command(), "--file", str(ROOT / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.timeout(CHECK_TIMEOUT_S + 60)
def test_compose_stack_builds_starts_and_runs_code(
    docker_client: docker.DockerClient, built_images: dict[str, str]
) -> None:
    compose_command()
    check = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "compose-check.sh")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        stdout, stderr = check.communicate(timeout=CHECK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # SIGTERM, not the SIGKILL subprocess.run would send: the script's trap tears down.
        check.terminate()
        stdout, stderr = check.communicate(timeout=120)
        pytest.fail(f"compose-check.sh ran past {CHECK_TIMEOUT_S} s:\n{stdout}{stderr}")
    output = stdout + stderr
    if check.returncode == PREREQUISITE_MISSING:
        missing(output.strip().splitlines()[-1])
    assert check.returncode == 0, output
    assert "print(1) through the API printed 1" in stdout, output
    assert "egress: the sandbox reached the worker's proxy" in stdout, output
    assert "left after down -v" not in output, output
