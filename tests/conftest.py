"""Shared fixtures: the real Docker engine and the sandbox images, with CI never skipping quietly.

On a laptop without Docker a test that needs it is skipped; under CI (CI=true) it fails, so a run
that could not test the sandbox cannot pass. After the whole run no labelled container may remain.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest

from executor_service.policy.loader import load_policies
from executor_service.policy.model import Policy
from executor_service.sandbox.catalogue import Catalogue, load_catalogue
from executor_service.sandbox.docker_runner import DockerRunner, create_runner
from executor_service.sandbox.runner import MANAGED_LABEL
from executor_service.sandbox.spec import LimitsOverride, Program, SandboxConfig
from executor_service.settings import Settings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# This run's sandboxes carry an instance name of their own (every Settings built here, and every
# service this run starts, inherits it), so runs side by side never reap or count each other's.
INSTANCE = os.environ.setdefault("EXECUTOR_INSTANCE", f"test-{os.getpid()}")


def missing(reason: str) -> None:
    """Skip on a developer's machine; fail under CI, where a missing service is a broken set-up."""
    if IN_CI:
        pytest.fail(f"required service missing under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


USED_ENGINE: list[bool] = []  # set once a test asked for the engine: then the leak check runs


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        missing(f"no Docker engine: {exc}")
    USED_ENGINE.append(True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def runner(docker_client: docker.DockerClient, settings: Settings) -> Iterator[DockerRunner]:
    created = create_runner(settings)
    yield created
    created.close()


@pytest.fixture(scope="session")
def catalogue(settings: Settings) -> Catalogue:
    return load_catalogue(settings.images_dir)


@pytest.fixture(scope="session")
def policies(settings: Settings, catalogue: Catalogue) -> dict[str, Policy]:
    return dict(load_policies(settings.policies_dir, catalogue))


@pytest.fixture(scope="session")
def built_images(
    docker_client: docker.DockerClient, catalogue: Catalogue, settings: Settings
) -> dict[str, str]:
    """Image name -> reference, after checking every catalogued image exists on the engine."""
    refs = {name: catalogue.image_ref(settings.image_prefix, name) for name in catalogue.images}
    for ref in refs.values():
        try:
            docker_client.images.get(ref)
        except docker.errors.ImageNotFound:
            missing(f"sandbox image {ref} is not built (run scripts/setup.sh)")
    return refs


@pytest.fixture(scope="session")
def runtime() -> str:
    """The OCI runtime of the sandboxes a test builds; tests/security overrides it with both."""
    return "runc"


class SandboxFactory:
    """Builds SandboxConfigs and Programs the way the worker does: policy, catalogue, language.

    Every config runs under `runtime`, with the limits a test asks for: under runsc even a pids
    limit below gVisor's floor for policies runs, as the container's own limit is then derived
    from it (see hardening.gvisor_process_limits).
    """

    def __init__(
        self,
        policies: dict[str, Policy],
        catalogue: Catalogue,
        images: dict[str, str],
        runtime: str = "runc",
    ) -> None:
        self._policies = policies
        self._catalogue = catalogue
        self._images = images
        self.runtime = runtime

    @property
    def gvisor(self) -> bool:
        return self.runtime == "runsc"

    def config(
        self, language: str = "python", policy: str = "default", **limits: Any
    ) -> SandboxConfig:
        chosen = self._policies[policy]
        image = chosen.languages[language]
        return SandboxConfig(
            image=self._images[image],
            limits=chosen.effective_limits(LimitsOverride(**limits) if limits else None),
            mounts=tuple(mount.to_mount() for mount in chosen.mounts),
            runtime=None if self.runtime == "runc" else self.runtime,
            labels={"agent-sandbox.test": "1"},
            ready_python=self._catalogue.runtime(image, "python") is not None,
        )

    def program(
        self, code: str, language: str = "python", policy: str = "default", **kw: Any
    ) -> Program:
        runtime = self._catalogue.runtime(self._policies[policy].languages[language], language)
        assert runtime is not None
        return Program(argv=runtime.command, files={runtime.file: code.encode()}, **kw)


@pytest.fixture
def sandboxes(
    policies: dict[str, Policy], catalogue: Catalogue, built_images: dict[str, str], runtime: str
) -> SandboxFactory:
    # Function scope: `runtime` differs by directory, and a session-wide factory would keep the
    # runtime of whichever test built it first.
    return SandboxFactory(policies, catalogue, built_images, runtime)


SESSION_STARTED = time.time()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No sandbox may outlive the suite: a leftover is a leak the reaper or a test should catch.

    Only this run's instance counts, and only a suite that used the engine looks, so a run
    beside it (tests or a deployment on the same engine) never has its sandboxes removed.
    """
    if not USED_ENGINE:
        return
    try:
        client = docker.from_env()
        found = client.api.containers(all=True, filters={"label": f"{MANAGED_LABEL}={INSTANCE}"})
    except docker.errors.DockerException:
        return
    left = [item for item in found if item.get("Created", 0) >= int(SESSION_STARTED)]
    if left:
        names = ", ".join(f"{item['Id'][:12]} {item.get('Labels', {})}" for item in left)
        print(f"\nFAILED: {len(left)} sandbox container(s) left after the suite: {names}")
        for item in left:
            try:
                client.api.remove_container(item["Id"], force=True)
            except docker.errors.NotFound:
                continue
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
