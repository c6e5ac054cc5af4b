"""Fixtures for the studio in a real browser: the real service, the scripted OpenAI-compatible
server, the studio itself started as `agent-client studio` in its own process, and headless
Chromium (tests/support/browser.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import pytest
from selenium import webdriver

from tests.integration.service.stack import service_stack
from tests.support.browser import headless_chromium
from tests.support.scripted_openai import ScriptedOpenAI, scripted_openai
from tests.unit.service.redis_server import free_port


@dataclass(frozen=True)
class Studio:
    url: str
    log: Path


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: docker.DockerClient,
    built_images: dict[str, str],
) -> Iterator[tuple[str, str]]:
    with service_stack(tmp_path_factory.mktemp("studio-service")) as running:
        headers = running.key("studio")
        yield running.url, headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def llm() -> Iterator[ScriptedOpenAI]:
    with scripted_openai() as server:
        yield server


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    port = free_port()
    log = tmp_path / "studio.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent_client.cli",
                "studio",
                "--port",
                str(port),
                "--database-url",
                f"sqlite:///{tmp_path / 'studio.db'}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield Studio(url=url, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the studio exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/api/info", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        try:
            process.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    with headless_chromium() as driver:
        yield driver
