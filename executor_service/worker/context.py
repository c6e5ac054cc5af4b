"""Everything a worker process needs, built once at its start from the settings."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from executor_service.jobs.metrics import RedisMetrics
from executor_service.jobs.plan import Planner
from executor_service.jobs.redis_store import RedisJobStore
from executor_service.jobs.store import JobStore
from executor_service.sandbox.runner import SandboxRunner
from executor_service.settings import Settings


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    store: JobStore
    runner: SandboxRunner
    planner: Planner
    metrics: RedisMetrics
    name: str  # host:pid, the identity heartbeats and claims carry

    @classmethod
    def create(cls, settings: Settings) -> WorkerContext:
        # Imported here so that only a worker process ever loads the Docker client.
        from executor_service.sandbox.docker_runner import create_runner

        store = RedisJobStore.from_settings(settings)
        return cls(
            settings=settings,
            store=store,
            runner=create_runner(settings),
            planner=Planner.load(settings),
            metrics=RedisMetrics(store.client),
            name=f"{socket.gethostname()}:{os.getpid()}",
        )
