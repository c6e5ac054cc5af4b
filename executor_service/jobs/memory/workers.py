"""WorkerRegistry and StoreHealth in memory: heartbeats by worker, images as last reported."""

from __future__ import annotations

import time
from collections.abc import Mapping

from executor_service.jobs.memory.base import Shared
from executor_service.settings import Settings

FORGET_AFTER_S = 86_400.0  # a worker silent this long is dropped, as in Redis


class MemoryWorkerRegistry:
    def __init__(self, shared: Shared, settings: Settings) -> None:
        self._shared = shared
        self._settings = settings
        self._beats: dict[str, float] = {}  # worker -> last heartbeat (epoch seconds)
        self._images: dict[str, bool] = {}

    def heartbeat(self, worker: str) -> None:
        with self._shared.cond:
            now = time.time()
            self._beats[worker] = now
            for name, beat in list(self._beats.items()):
                if beat <= now - FORGET_AFTER_S:
                    del self._beats[name]

    def forget(self, worker: str) -> None:
        with self._shared.cond:
            self._beats.pop(worker, None)

    def alive(self, worker: str) -> bool:
        with self._shared.cond:
            beat = self._beats.get(worker)
        return beat is not None and beat > time.time() - self._settings.heartbeat_ttl_s

    def any_alive(self) -> bool:
        since = time.time() - self._settings.heartbeat_ttl_s
        with self._shared.cond:
            return any(beat >= since for beat in self._beats.values())

    def set_images_present(self, present: Mapping[str, bool]) -> None:
        # Merged, never replaced: an image a worker stops reporting keeps its last value.
        with self._shared.cond:
            self._images.update(present)

    def images_present(self) -> dict[str, bool]:
        with self._shared.cond:
            return dict(self._images)


class MemoryHealth:
    """Memory always answers and, for the life of the process, keeps what it accepted."""

    def ping(self) -> bool:
        return True

    def persistent(self) -> bool:
        return True
