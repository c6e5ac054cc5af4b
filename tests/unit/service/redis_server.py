"""A throw-away redis-server on a free loopback port, for tests that need the real thing."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from tests.conftest import missing


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def redis_server() -> Iterator[str]:
    """Yield the URL of a fresh redis-server with no persistence; stop it afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        missing("redis-server is not installed")
        raise AssertionError("unreachable")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="as-redis-") as workdir:
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        try:
            for _ in range(200):
                try:
                    if client.ping():
                        break
                except redis.ConnectionError:
                    time.sleep(0.05)
            else:
                raise RuntimeError("redis-server did not start")
            yield url
        finally:
            client.close()
            process.terminate()
            process.wait(timeout=10)
