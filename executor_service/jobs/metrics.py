"""Service metrics kept in Redis, so API and worker processes share one set of numbers.

Workers observe; the API's /metrics renders. Histograms store a count per bucket plus sum and
count in one hash each, which is all Prometheus' histogram type needs and costs one round trip.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import redis

PREFIX = "as:metrics:"

HISTOGRAMS: dict[str, tuple[str, tuple[float, ...]]] = {
    "queue_wait_seconds": (
        "Time from submission to a worker claiming the execution",
        (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    ),
    "run_seconds": (
        "Wall time of the user's program as the sandbox measured it",
        (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    ),
    "container_start_seconds": (
        "Time to prepare a hardened sandbox container",
        (0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5),
    ),
}
OUTCOMES = "executions_total"
EGRESS = "egress_connections_total"


@dataclass(frozen=True)
class HistogramSnapshot:
    name: str
    help: str
    buckets: list[tuple[str, float]]  # (le, cumulative count), ending with +Inf
    sum: float


class RedisMetrics:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def observe(self, name: str, value: float) -> None:
        """Best effort: a number lost while Redis is away must not fail the run it describes."""
        _, bounds = HISTOGRAMS[name]
        bucket = next((str(bound) for bound in bounds if value <= bound), "+Inf")
        pipe: Any = self._redis.pipeline(transaction=False)
        pipe.hincrby(PREFIX + name, bucket, 1)
        pipe.hincrbyfloat(PREFIX + name, "sum", value)
        with contextlib.suppress(redis.RedisError):
            pipe.execute()

    def count_outcome(self, outcome: str) -> None:
        """Outcomes are `finished:<result status>`, `failed`, `cancelled` or `requeued`."""
        with contextlib.suppress(redis.RedisError):
            self._redis.hincrby(PREFIX + OUTCOMES, outcome, 1)

    def count_egress(self, allowed: bool, reason: str) -> None:
        """One connection a sandbox asked the egress proxy for: `allowed`, or `denied:<reason>`."""
        field = "allowed" if allowed else f"denied:{reason}"
        with contextlib.suppress(redis.RedisError):
            self._redis.hincrby(PREFIX + EGRESS, field, 1)

    def egress(self) -> dict[str, int]:
        raw: dict[str, str] = self._redis.hgetall(PREFIX + EGRESS)  # type: ignore[assignment]
        return {outcome: int(count) for outcome, count in raw.items()}

    def outcomes(self) -> dict[str, int]:
        raw: dict[str, str] = self._redis.hgetall(PREFIX + OUTCOMES)  # type: ignore[assignment]
        return {outcome: int(count) for outcome, count in raw.items()}

    def histograms(self) -> list[HistogramSnapshot]:
        snapshots = []
        for name, (text, bounds) in HISTOGRAMS.items():
            raw: dict[str, str] = self._redis.hgetall(PREFIX + name)  # type: ignore[assignment]
            running = 0.0
            buckets = []
            for le in [*(str(bound) for bound in bounds), "+Inf"]:
                running += float(raw.get(le, 0))
                buckets.append((le, running))
            snapshots.append(HistogramSnapshot(name, text, buckets, float(raw.get("sum", 0.0))))
        return snapshots
