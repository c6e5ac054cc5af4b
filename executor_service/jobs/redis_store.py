"""Every store on one Redis: the service's shared state, built from the settings."""

from __future__ import annotations

import redis

from executor_service.jobs.redis_base import connect
from executor_service.jobs.redis_executions import RedisExecutionStore
from executor_service.jobs.redis_keys import RedisKeyStore
from executor_service.jobs.redis_session_ops import RedisSessionOpQueue
from executor_service.jobs.redis_sessions import RedisSessionStore
from executor_service.jobs.redis_workers import RedisHealth, RedisWorkerRegistry
from executor_service.jobs.store import Stores
from executor_service.settings import Settings


def redis_stores(settings: Settings) -> tuple[Stores, redis.Redis]:
    """The stores and the text client they share (metrics keep their numbers there too)."""
    client = connect(settings.redis_url)
    raw = connect(settings.redis_url, decode=False)
    stores = Stores(
        keys=RedisKeyStore(client),
        executions=RedisExecutionStore(client, settings),
        sessions=RedisSessionStore(client, settings),
        session_ops=RedisSessionOpQueue(client, raw),
        workers=RedisWorkerRegistry(client, settings),
        health=RedisHealth(client),
    )
    return stores, client
