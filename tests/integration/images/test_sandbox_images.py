"""The built sandbox images, checked inside hardened containers, and the builder's skip logic."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from docker.models.images import Image

from executor_service.errors import ConfigError
from executor_service.images.base import OFFICIAL_BASE, ensure_base_image
from executor_service.images.build import build_images
from executor_service.images.sources import IMAGE_LABEL, SOURCE_HASH_LABEL
from executor_service.sandbox.catalogue import load_catalogue
from executor_service.sandbox.docker_runner import DockerRunner, create_runner
from executor_service.settings import Settings
from tests.conftest import missing

# The offline-base test runs debootstrap and an apt-based build: minutes, not the default bound.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

SANDBOX_UID = 10001
KEEPER_UID = 10002


def run(
    docker_client: docker.DockerClient,
    image: str,
    command: list[str],
    *,
    user: str | None = None,
    cap_add: list[str] | None = None,
) -> tuple[int, str]:
    """Run a command hardened the way sandboxes are; return its exit code and combined output."""
    container = docker_client.containers.run(
        image,
        command,
        detach=True,
        user=user,
        read_only=True,
        cap_drop=["ALL"],
        cap_add=cap_add,
        security_opt=["no-new-privileges"],
        network_mode="none",
        pids_limit=128,
        mem_limit="512m",
        memswap_limit="512m",
        tmpfs={
            "/workspace": f"size=64m,uid={SANDBOX_UID},gid={SANDBOX_UID},mode=0755",
            "/tmp": "size=32m,mode=1777,noexec",
        },
    )
    try:
        status = container.wait(timeout=120)
        output = container.logs(stdout=True, stderr=True).decode()
    finally:
        container.remove(force=True)
    return int(status["StatusCode"]), output


PLOT = """
import json, numpy as np, pandas as pd, matplotlib, matplotlib.pyplot as plt
frame = pd.DataFrame({"x": np.arange(10), "y": np.arange(10) ** 2})
frame.plot(x="x", y="y")
plt.savefig("/workspace/plot.png")
with open("/workspace/plot.png", "rb") as png:
    magic = png.read(8)
print(json.dumps({"sum": int(frame.y.sum()), "png": magic == b"\\x89PNG\\r\\n\\x1a\\n",
                  "backend": matplotlib.get_backend()}))
"""


def test_python_runs_numpy_pandas_matplotlib_offline(
    docker_client: docker.DockerClient, built_images: dict[str, str]
) -> None:
    code, output = run(docker_client, built_images["python"], ["python", "-c", PLOT])
    assert code == 0, output
    assert output.strip().splitlines()[-1] == '{"sum": 285, "png": true, "backend": "agg"}'


def test_python_command_is_python3(
    docker_client: docker.DockerClient, built_images: dict[str, str]
) -> None:
    code, output = run(docker_client, built_images["python"], ["python", "--version"])
    assert code == 0, output
    assert output.startswith("Python 3.")


def test_python_image_runs_javascript_at_the_catalogues_node_version(
    docker_client: docker.DockerClient, settings: Settings, built_images: dict[str, str]
) -> None:
    runtime = load_catalogue(settings.images_dir).runtime("python", "javascript")
    assert runtime is not None
    script = "console.log(process.version, [1, 2, 3].map((x) => x * x).join())"
    code, output = run(docker_client, built_images["python"], ["node", "-e", script])
    assert code == 0, output
    version, squares = output.split()
    assert version.startswith(f"v{runtime.version}."), (version, runtime.version)
    assert squares == "1,4,9"


def test_shell_image_has_its_tools(
    docker_client: docker.DockerClient, built_images: dict[str, str]
) -> None:
    script = (
        "for t in bash grep sed gawk awk jq bc find xargs diff file tar gzip sort; do "
        'command -v "$t" >/dev/null || { echo "missing $t"; exit 1; }; done; '
        "echo '2^10' | bc; echo '{\"a\": [1, 2]}' | jq -c '.a | add'"
    )
    code, output = run(docker_client, built_images["shell"], ["bash", "-c", script])
    assert code == 0, output
    assert output.split() == ["1024", "3"]


@pytest.mark.parametrize("name", ["python", "shell"])
def test_code_runs_as_sandbox_user_in_workspace(
    docker_client: docker.DockerClient, built_images: dict[str, str], name: str
) -> None:
    script = 'echo "$(id -u) $(id -g) $HOME $PWD"; getent passwd keeper | cut -d: -f3,4'
    code, output = run(docker_client, built_images[name], ["sh", "-c", script])
    assert code == 0, output
    assert output.split() == [
        str(SANDBOX_UID),
        str(SANDBOX_UID),
        "/workspace",
        "/workspace",
        f"{KEEPER_UID}:{SANDBOX_UID}",
    ]


@pytest.mark.parametrize("name", ["python", "shell"])
def test_no_setuid_or_setgid_files(
    docker_client: docker.DockerClient, built_images: dict[str, str], name: str
) -> None:
    # As root with only the capability to search every directory, so none is left unscanned.
    code, output = run(
        docker_client,
        built_images[name],
        ["find", "/", "-xdev", "-perm", "/6000", "-type", "f"],
        user="0:0",
        cap_add=["DAC_READ_SEARCH"],
    )
    assert code == 0, output
    assert output == ""


@pytest.mark.parametrize("name", ["python", "shell"])
def test_no_compiler_or_privilege_tool(
    docker_client: docker.DockerClient, built_images: dict[str, str], name: str
) -> None:
    script = 'for t in gcc cc c++ g++ clang ld as make sudo; do command -v "$t"; done; true'
    code, output = run(docker_client, built_images[name], ["sh", "-c", script])
    assert code == 0, output
    assert output == ""


@pytest.mark.parametrize("name", ["python", "shell"])
def test_labels_and_runtime_config(
    docker_client: docker.DockerClient, settings: Settings, built_images: dict[str, str], name: str
) -> None:
    image = docker_client.images.get(built_images[name])
    version = load_catalogue(settings.images_dir).images[name].version
    labels = image.labels
    assert labels[IMAGE_LABEL] == name
    assert labels["agent-sandbox.version"] == version
    assert labels["org.opencontainers.image.version"] == version
    assert labels["org.opencontainers.image.title"] == f"agent-sandbox {name}"
    assert labels["org.opencontainers.image.description"]
    assert len(labels[SOURCE_HASH_LABEL]) == 64
    config = image.attrs["Config"]
    assert config["User"] == f"{SANDBOX_UID}:{SANDBOX_UID}"
    assert config["WorkingDir"] == "/workspace"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"].endswith("/usr/local/bin:/usr/bin:/bin")
    assert env["HOME"] == "/workspace"
    assert env["LANG"] == "C.UTF-8"
    if name == "python":
        # pip installs for the code's user, in the workspace, and its scripts are found.
        assert env["PATH"] == "/workspace/.local/bin:/usr/local/bin:/usr/bin:/bin"
        assert env["PYTHONUSERBASE"] == "/workspace/.local"
        assert env["PYTHONUNBUFFERED"] == "1"
        assert env["PYTHONDONTWRITEBYTECODE"] == "1"
        assert env["MPLBACKEND"] == "Agg"
        assert env["MPLCONFIGDIR"] == "/tmp/matplotlib"


def test_second_build_skips_and_force_rebuilds(
    settings: Settings, built_images: dict[str, str], runner: DockerRunner
) -> None:
    build_images(settings, log=lambda _line: None)  # whatever changed since set-up is built now
    lines: list[str] = []
    assert build_images(settings, log=lines.append) == []
    assert sum("skipped" in line for line in lines) == len(built_images)
    assert runner.present_images(built_images.values()) == frozenset(built_images.values())
    # Every layer comes from the cache, so the forced rebuild is quick and yields the same image.
    assert build_images(settings, ["shell"], force=True, log=lines.append) == [
        built_images["shell"]
    ]


@pytest.fixture
def scratch_prefix(docker_client: docker.DockerClient) -> Iterator[str]:
    """An image prefix of this test's own, whose images are removed afterwards."""
    prefix = f"agent-sandbox-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    for image in docker_client.images.list():
        for tag in image.tags:
            if tag.startswith(f"{prefix}/"):
                docker_client.images.remove(tag, force=True)


def test_changing_an_image_folder_rebuilds_only_that_image(
    docker_client: docker.DockerClient,
    built_images: dict[str, str],
    scratch_prefix: str,
    tmp_path: Path,
) -> None:
    source = Settings().images_dir
    shutil.copytree(source, tmp_path, dirs_exist_ok=True)
    settings = Settings(images_dir=tmp_path, image_prefix=scratch_prefix)
    shell = f"{scratch_prefix}/shell:1"
    assert build_images(settings, ["shell"], log=lambda _line: None) == [shell]
    assert build_images(settings, ["shell"], log=lambda _line: None) == []
    first: Image = docker_client.images.get(shell)

    (tmp_path / "shell" / "NOTES").write_text("a file beside the Dockerfile changes the hash\n")
    assert build_images(settings, ["shell"], log=lambda _line: None) == [shell]
    second: Image = docker_client.images.get(shell)
    assert second.labels[SOURCE_HASH_LABEL] != first.labels[SOURCE_HASH_LABEL]
    runner = create_runner(settings)
    try:
        assert runner.present_images([shell, f"{scratch_prefix}/python:1"]) == {shell}
    finally:
        runner.close()


def test_unknown_image_name_is_a_config_error(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="unknown image 'ruby'"):
        build_images(settings, ["ruby"], log=lambda _line: None)


@pytest.fixture
def scratch_base(docker_client: docker.DockerClient) -> Iterator[str]:
    tag = f"agent-sandbox-test/base:{uuid.uuid4().hex[:8]}"
    yield tag
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(tag, force=True)


def test_offline_base_is_made_with_debootstrap_when_absent(
    docker_client: docker.DockerClient, scratch_base: str, scratch_prefix: str, tmp_path: Path
) -> None:
    """The fresh-machine path: no base image at all, so debootstrap makes one, and it builds."""
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        missing("making a base needs root and debootstrap (scripts/setup.sh installs it)")
    try:
        docker_client.images.get(OFFICIAL_BASE)
        pytest.skip(f"{OFFICIAL_BASE} is present, so no base is ever made here")
    except docker.errors.ImageNotFound:
        pass
    lines: list[str] = []
    assert (
        ensure_base_image(docker_client, log=lines.append, offline_base=scratch_base)
        == scratch_base
    )
    assert any(line.startswith("debootstrap --variant=minbase bookworm") for line in lines)

    probe = "cat /etc/debian_version; ls /var/cache/apt/archives"
    output = docker_client.containers.run(
        scratch_base, ["sh", "-c", probe], network_mode="none", remove=True
    ).decode()
    debian_version, *cached = output.split()
    assert debian_version.startswith("12.")
    assert [name for name in cached if name.endswith(".deb")] == []

    shutil.copytree(Settings().images_dir, tmp_path, dirs_exist_ok=True)
    settings = Settings(images_dir=tmp_path, image_prefix=scratch_prefix)
    built = build_images(settings, ["shell"], log=lines.append, offline_base=scratch_base)
    assert built == [f"{scratch_prefix}/shell:1"]
    code, output = run(docker_client, built[0], ["sh", "-c", "id -u; echo '6*7' | bc"])
    assert (code, output.split()) == (0, [str(SANDBOX_UID), "42"])
