"""Everything a worker process needs, built once at its start from the settings."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import redis

from executor_service.jobs.dispatch import Dispatcher
from executor_service.jobs.metrics import RedisMetrics
from executor_service.jobs.plan import Planner
from executor_service.jobs.redis_store import redis_stores
from executor_service.jobs.store import Stores
from executor_service.sandbox.runner import SandboxRunner
from executor_service.settings import Settings
from executor_service.worker.egress import EgressGates
from executor_service.worker.run_watch import RunWatch


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    stores: Stores
    runner: SandboxRunner
    egress: EgressGates
    planner: Planner
    metrics: RedisMetrics
    dispatcher: Dispatcher  # the reconciler sends lost executions again
    broker: redis.Redis  # where the reconciler looks for messages in flight
    name: str  # host:pid, the identity heartbeats and claims carry
    watch: RunWatch  # the process's one watcher of its runs: cancel flags, held output

    @classmethod
    def create(cls, settings: Settings) -> WorkerContext:
        # Imported here so that only a worker process ever loads the Docker client.
        from executor_service.sandbox.docker_runner import create_worker_runner

        stores, client = redis_stores(settings)
        name = f"{socket.gethostname()}:{os.getpid()}"
        return cls(
            settings=settings,
            stores=stores,
            runner=create_worker_runner(settings, owner=name),
            egress=EgressGates(settings),
            planner=Planner.load(settings),
            metrics=RedisMetrics(client),
            dispatcher=Dispatcher(client),
            broker=client,
            name=name,
            watch=RunWatch(stores.executions, settings.cancel_poll_s),
        )
