"""WorkerRegistry and StoreHealth on Redis.

`workers` is a sorted set worker -> last heartbeat (epoch seconds); `images` a hash image ->
"1"/"0" as the workers last saw the engine.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import redis

from executor_service.jobs.redis_base import key
from executor_service.settings import Settings

_WORKERS = key("workers")
_IMAGES = key("images")
# Policies under which Redis may drop a key that has no TTL: queued work, keys, the broker's list.
UNSAFE_EVICTION = frozenset({"allkeys-lru", "allkeys-lfu", "allkeys-random"})


class RedisWorkerRegistry:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._settings = settings

    def heartbeat(self, worker: str) -> None:
        now = time.time()
        pipe = self._redis.pipeline()
        pipe.zadd(_WORKERS, {worker: now})
        # Forget workers silent for a day so the set stays small.
        pipe.zremrangebyscore(_WORKERS, "-inf", now - 86_400)
        pipe.execute()

    def forget(self, worker: str) -> None:
        self._redis.zrem(_WORKERS, worker)

    def alive(self, worker: str) -> bool:
        beat = self._redis.zscore(_WORKERS, worker)
        return beat is not None and float(beat) > time.time() - self._settings.heartbeat_ttl_s

    def any_alive(self) -> bool:
        since = time.time() - self._settings.heartbeat_ttl_s
        return int(self._redis.zcount(_WORKERS, since, "+inf")) > 0

    def set_images_present(self, present: Mapping[str, bool]) -> None:
        if present:
            self._redis.hset(
                _IMAGES, mapping={name: "1" if ok else "0" for name, ok in present.items()}
            )

    def images_present(self) -> dict[str, bool]:
        raw: dict[str, str] = self._redis.hgetall(_IMAGES)  # type: ignore[assignment]
        return {name: value == "1" for name, value in raw.items()}


class RedisHealth:
    """Answers from INFO, which managed Redis services allow where CONFIG is often refused."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def persistent(self) -> bool:
        try:
            persistence: dict[str, Any] = self._redis.info("persistence")
            memory: dict[str, Any] = self._redis.info("memory")
        except redis.RedisError:
            return False
        aof = int(persistence.get("aof_enabled", 0)) == 1
        return aof and str(memory.get("maxmemory_policy", "")) not in UNSAFE_EVICTION
