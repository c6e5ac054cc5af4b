"""Fixtures for the service's unit tests: a real redis-server per module and a fake runner.

The worker tests run on the Redis stores because a worker also needs what only Redis gives it:
the broker the reconciler looks into and the metrics it writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from executor_service.jobs.dispatch import Dispatcher
from executor_service.jobs.metrics import RedisMetrics
from executor_service.jobs.plan import Planner
from executor_service.jobs.redis_store import redis_stores
from executor_service.jobs.store import Stores
from executor_service.sandbox.runner import SandboxRunner
from executor_service.settings import Settings
from executor_service.worker.context import WorkerContext
from executor_service.worker.egress import EgressGates
from executor_service.worker.run_watch import RunWatch
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
        egress_dir=tmp_path / "egress",
        heartbeat_ttl_s=5,
        result_ttl_s=600,
        cancel_poll_s=0.05,
    )
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


@pytest.fixture
def redis_backed(service_settings: Settings) -> tuple[Stores, redis.Redis]:
    """The Redis stores and the text client they share."""
    return redis_stores(service_settings)


@pytest.fixture
def stores(redis_backed: tuple[Stores, redis.Redis]) -> Stores:
    return redis_backed[0]


@pytest.fixture
def redis_client(redis_backed: tuple[Stores, redis.Redis]) -> redis.Redis:
    return redis_backed[1]


@pytest.fixture
def fake_runner() -> FakeRunner:
    return FakeRunner()


def worker_context_for(
    settings: Settings, runner: SandboxRunner, name: str = "test-worker:1"
) -> WorkerContext:
    """A worker's context on the Redis at settings.redis_url, as WorkerContext.create builds it."""
    stores, client = redis_stores(settings)
    return WorkerContext(
        settings=settings,
        stores=stores,
        runner=runner,
        egress=EgressGates(settings),
        planner=Planner.load(settings),
        metrics=RedisMetrics(client),
        dispatcher=Dispatcher(client),
        broker=client,
        name=name,
        watch=RunWatch(stores.executions, settings.cancel_poll_s),
    )


@pytest.fixture
def worker_context(service_settings: Settings, fake_runner: FakeRunner) -> WorkerContext:
    return worker_context_for(service_settings, fake_runner)
