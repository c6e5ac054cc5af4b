"""Service metrics kept in Redis, so API and worker processes share one set of numbers.

Workers observe; the API's /metrics renders. Histograms store a count per bucket plus sum and
count in one hash each, which is all Prometheus' histogram type needs. A worker gathers one
execution's numbers in a MetricsBatch and writes them together: one round trip per execution.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from dataclasses import dataclass
from typing import Any

import redis

from executor_service.sandbox.runner import PoolState

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


class MetricsBatch:
    """Numbers kept until `flush` writes them all in one pipeline; safe to feed from several
    threads (the egress proxy counts connections off the run's thread)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._lock = threading.Lock()
        self._counts: list[tuple[str, str]] = []  # (hash, field) each to add 1 to
        self._sums: list[tuple[str, float]] = []  # (histogram hash, value) to add to its sum

    def observe(self, name: str, value: float) -> None:
        _, bounds = HISTOGRAMS[name]
        bucket = next((str(bound) for bound in bounds if value <= bound), "+Inf")
        with self._lock:
            self._counts.append((PREFIX + name, bucket))
            self._sums.append((PREFIX + name, float(value)))

    def count_outcome(self, outcome: str) -> None:
        """Outcomes are `finished:<result status>`, `failed`, `cancelled` or `requeued`."""
        with self._lock:
            self._counts.append((PREFIX + OUTCOMES, outcome))

    def count_egress(self, allowed: bool, reason: str) -> None:
        """One connection a sandbox asked the egress proxy for: `allowed`, or `denied:<reason>`."""
        field = "allowed" if allowed else f"denied:{reason}"
        with self._lock:
            self._counts.append((PREFIX + EGRESS, field))

    def flush(self) -> None:
        """Best effort: numbers lost while Redis is away must not fail the run they describe."""
        with self._lock:
            counts, self._counts = self._counts, []
            sums, self._sums = self._sums, []
        if not counts and not sums:
            return
        pipe: Any = self._redis.pipeline(transaction=False)
        for name, field in counts:
            pipe.hincrby(name, field, 1)
        for name, value in sums:
            pipe.hincrbyfloat(name, "sum", value)
        with contextlib.suppress(redis.RedisError):
            pipe.execute()


class RedisMetrics:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        # What every run of this process counts, written together by `flush` (the worker calls
        # it once a second): one pipeline a second under load instead of one per run. A worker
        # killed outright loses at most that second's numbers, never an execution.
        self.pending = MetricsBatch(client)

    def flush(self) -> None:
        self.pending.flush()

    def batch(self) -> MetricsBatch:
        """Gather one execution's numbers and `flush` them together at its end."""
        return MetricsBatch(self._redis)

    def observe(self, name: str, value: float) -> None:
        """Best effort: a number lost while Redis is away must not fail the run it describes."""
        batch = self.batch()
        batch.observe(name, value)
        batch.flush()

    def count_outcome(self, outcome: str) -> None:
        """Outcomes are `finished:<result status>`, `failed`, `cancelled` or `requeued`."""
        batch = self.batch()
        batch.count_outcome(outcome)
        batch.flush()

    def count_egress(self, allowed: bool, reason: str) -> None:
        """One connection a sandbox asked the egress proxy for: `allowed`, or `denied:<reason>`."""
        batch = self.batch()
        batch.count_egress(allowed, reason)
        batch.flush()

    def set_pool(self, worker: str, state: PoolState, ttl_s: float) -> None:
        """A worker's pool as it is now; it lapses with the worker (ttl_s, renewed by beats)."""
        key = f"{PREFIX}pool:{worker}"
        pipe: Any = self._redis.pipeline(transaction=False)
        pipe.hset(key, mapping=dataclasses.asdict(state))
        pipe.pexpire(key, int(ttl_s * 1000))
        with contextlib.suppress(redis.RedisError):
            pipe.execute()

    def pools(self) -> dict[str, dict[str, int]]:
        """Every live worker's pool numbers, by worker."""
        found: dict[str, dict[str, int]] = {}
        for key in self._redis.scan_iter(match=f"{PREFIX}pool:*", count=100):
            raw: dict[str, str] = self._redis.hgetall(key)  # type: ignore[assignment]
            if raw:
                found[str(key).removeprefix(f"{PREFIX}pool:")] = {
                    name: int(value) for name, value in raw.items()
                }
        return found

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
