"""A newcomer's second checkout against the same Redis (issue 11): `executor-service serve`
started from each state directory leaves a working key there, and `--host`/`--port` choose where
it listens, over EXECUTOR_PORT."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.unit.service.redis_server import RedisServer, free_port, running_redis

pytestmark = pytest.mark.redis


@contextmanager
def _serving(redis: RedisServer, state_dir: Path, port: int) -> Iterator[str]:
    env = {
        "EXECUTOR_REDIS_URL": redis.url,
        "EXECUTOR_STATE_DIR": str(state_dir),
        "EXECUTOR_PORT": str(free_port()),  # the flag below must win
        "EXECUTOR_LOG_LEVEL": "warning",
        "PATH": "/usr/bin:/bin",
    }
    command = [sys.executable, "-m", "executor_service.cli", "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log = state_dir.parent / f"serve-{port}.log"
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError(f"serve did not come up on {url}:\n{log.read_text()}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_second_state_directory_on_the_same_redis_gets_a_working_key(tmp_path: Path) -> None:
    with running_redis() as redis:
        answers = []
        for clone in ("clone-1", "clone-2"):
            state_dir = tmp_path / clone / ".state"
            with _serving(redis, state_dir, free_port()) as url:
                key = (state_dir / "first-key").read_text().strip()
                headers = {"Authorization": f"Bearer {key}"}
                answers.append(httpx.get(f"{url}/v1/policies", headers=headers, timeout=10))
    assert [answer.status_code for answer in answers] == [200, 200]
