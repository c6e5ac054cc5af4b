"""Fixtures for the service's unit tests: a real redis-server per module and a fake runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from executor_service.jobs.metrics import RedisMetrics
from executor_service.jobs.plan import Planner
from executor_service.jobs.redis_store import RedisJobStore
from executor_service.settings import Settings
from executor_service.worker.context import WorkerContext
from tests.unit.service.fake_runner import FakeRunner
from tests.unit.service.redis_server import redis_server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def service_settings(redis_url: str, tmp_path: Path) -> Iterator[Settings]:
    yield Settings(
        redis_url=redis_url,
        state_dir=tmp_path / "state",
        heartbeat_ttl_s=5,
        result_ttl_s=600,
        cancel_poll_s=0.05,
    )
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


@pytest.fixture
def store(service_settings: Settings) -> RedisJobStore:
    return RedisJobStore.from_settings(service_settings)


@pytest.fixture
def fake_runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def worker_context(
    service_settings: Settings, store: RedisJobStore, fake_runner: FakeRunner
) -> WorkerContext:
    return WorkerContext(
        settings=service_settings,
        store=store,
        runner=fake_runner,
        planner=Planner.load(service_settings),
        metrics=RedisMetrics(store.client),
        name="test-worker:1",
    )
