"""The whole service as real processes: redis-server, Celery workers, and the API under uvicorn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from executor_service.jobs.ids import utcnow
from executor_service.jobs.redis_store import redis_stores
from executor_service.jobs.tenant import ApiKey, new_key
from executor_service.settings import Settings
from tests.unit.service.redis_server import RedisServer, free_port, running_redis


class ServiceStack:
    def __init__(self, redis: RedisServer, state_dir: Path, extra_env: dict[str, str]) -> None:
        redis_url = redis.url
        self.redis = redis
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state_dir = state_dir
        self.env = {
            **os.environ,
            "EXECUTOR_REDIS_URL": redis_url,
            "EXECUTOR_PORT": str(self.port),
            "EXECUTOR_STATE_DIR": str(state_dir),
            # Each stack's own: a janitor removes the egress directories its Redis does not know.
            "EXECUTOR_EGRESS_DIR": str(state_dir / "egress"),
            "EXECUTOR_JANITOR_INTERVAL_S": "0.5",
            "EXECUTOR_HEARTBEAT_TTL_S": "6",
            "EXECUTOR_CANCEL_POLL_S": "0.1",
            "EXECUTOR_WORKER_CONCURRENCY": "2",
            "EXECUTOR_LOG_LEVEL": "info",
            **extra_env,
        }
        self.settings = Settings(redis_url=redis_url, state_dir=state_dir, heartbeat_ttl_s=6)
        self.stores, self.client = redis_stores(self.settings)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.api: subprocess.Popen[bytes] | None = None
        self._logs = state_dir / "logs"
        self._logs.mkdir(parents=True, exist_ok=True)

    def _spawn(self, command: str, log_name: str) -> subprocess.Popen[bytes]:
        with (self._logs / log_name).open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "executor_service.cli", command],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def start_worker(self) -> subprocess.Popen[bytes]:
        worker = self._spawn("worker", f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        return worker

    def start_api(self) -> None:
        self.api = self._spawn("serve", "api.log")

    def wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=5)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise RuntimeError(f"service not ready: {last}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self._logs.glob("*.log"))
        )

    def key(self, tenant: str, max_concurrency: int = 100, **bounds: int) -> dict[str, str]:
        """Headers with a new key of `tenant`; `bounds` are ApiKey fields (max_sessions, ...)."""
        key_id, key = new_key()
        self.stores.keys.add(
            key,
            ApiKey.model_validate(
                {
                    "key_id": key_id,
                    "tenant": tenant,
                    "max_concurrency": max_concurrency,
                    "created_at": utcnow(),
                    **bounds,
                }
            ),
        )
        return {"Authorization": f"Bearer {key}"}

    def stop(self) -> None:
        for process in [*self.workers, *([self.api] if self.api else [])]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers, *([self.api] if self.api else [])]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def service_stack(state_dir: Path, workers: int = 1, **extra_env: str) -> Iterator[ServiceStack]:
    with ExitStack() as cleanup:
        redis = cleanup.enter_context(running_redis())
        stack = ServiceStack(redis, state_dir, extra_env)
        cleanup.callback(stack.stop)
        for _ in range(workers):
            stack.start_worker()
        stack.start_api()
        stack.wait_ready()
        yield stack
