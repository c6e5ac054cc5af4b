"""What the routes share: built once per app from the settings, kept on `app.state`."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from executor_service.jobs.dispatch import Dispatcher
from executor_service.jobs.metrics import RedisMetrics
from executor_service.jobs.plan import Planner
from executor_service.jobs.session_calls import SessionCaller
from executor_service.jobs.store import Stores
from executor_service.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    stores: Stores
    planner: Planner
    dispatcher: Dispatcher
    sessions: SessionCaller
    metrics: RedisMetrics
    draining: threading.Event = field(default_factory=threading.Event)  # set on SIGTERM
