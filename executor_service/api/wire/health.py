"""Liveness and readiness bodies (/healthz, /readyz)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Annotated[str, Field(examples=["ok"])]


class Readiness(BaseModel):
    redis: bool
    persistence: bool  # AOF on and no eviction of keys without a TTL
    worker: bool  # a worker's heartbeat is fresh
    images: bool
    draining: bool  # this API process is shutting down
