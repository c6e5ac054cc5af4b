"""What the routes share: built once per app from the settings, kept on `app.state`."""

from __future__ import annotations

from dataclasses import dataclass

from executor_service.jobs.dispatch import Dispatcher
from executor_service.jobs.metrics import RedisMetrics
from executor_service.jobs.plan import Planner
from executor_service.jobs.store import JobStore
from executor_service.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: JobStore
    planner: Planner
    dispatcher: Dispatcher
    metrics: RedisMetrics
