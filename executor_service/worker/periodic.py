"""A daemon thread that calls one function at a fixed period until stopped."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog
from redis import RedisError

from executor_service.errors import ServiceError

log = structlog.get_logger(__name__)


class PeriodicThread:
    def __init__(self, name: str, period_s: float, tick: Callable[[], Any]) -> None:
        self._period_s = period_s
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except (ServiceError, RedisError, OSError):
                # A failed sweep must not end the loop: the engine or Redis may be back next time.
                log.exception("periodic task failed", task=self._thread.name)
            self._stop.wait(self._period_s)
