"""/metrics: Prometheus text built from the numbers workers and the API keep in Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from executor_service.api.deps import ServicesDep, _bearer, authenticate
from executor_service.api.services import Services

router = APIRouter(tags=["health"])
NAMESPACE = "agent_sandbox"


class RedisCollector:
    """Reads at scrape time, so every API process reports the same, service-wide numbers."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterator[Metric]:
        metrics = self._services.metrics
        outcomes = CounterMetricFamily(
            f"{NAMESPACE}_executions", "Executions that ended, by outcome", labels=["outcome"]
        )
        for outcome, count in sorted(metrics.outcomes().items()):
            outcomes.add_metric([outcome], count)
        yield outcomes
        egress = CounterMetricFamily(
            f"{NAMESPACE}_egress_connections",
            "Connections sandboxes asked the egress proxy for, by outcome and denial reason",
            labels=["outcome", "reason"],
        )
        for outcome, count in sorted(metrics.egress().items()):
            allowed, _, reason = outcome.partition(":")
            egress.add_metric([allowed, reason], count)
        yield egress
        for snapshot in metrics.histograms():
            yield HistogramMetricFamily(
                f"{NAMESPACE}_{snapshot.name}",
                snapshot.help,
                buckets=snapshot.buckets,
                sum_value=snapshot.sum,
            )
        yield from _pool_metrics(metrics.pools())
        queue = GaugeMetricFamily(f"{NAMESPACE}_queue_length", "Executions waiting for a worker")
        queue.add_metric([], self._services.stores.executions.queue_length())
        yield queue


def _pool_metrics(pools: dict[str, dict[str, int]]) -> Iterator[Metric]:
    """Each live worker's warm pool: idle members and keys now, hand-outs since it started."""
    idle = GaugeMetricFamily(
        f"{NAMESPACE}_pool_idle", "Warm-pool sandboxes waiting for a run", labels=["worker"]
    )
    keys = GaugeMetricFamily(
        f"{NAMESPACE}_pool_keys", "Distinct sandbox kinds a worker keeps warm", labels=["worker"]
    )
    handouts = CounterMetricFamily(
        f"{NAMESPACE}_pool_requests",
        "Single-use sandboxes asked of the pool: hit (a warm one) or miss (made on demand)",
        labels=["worker", "outcome"],
    )
    discarded = CounterMetricFamily(
        f"{NAMESPACE}_pool_discarded",
        "Warm sandboxes found dead or expired, never handed out",
        labels=["worker"],
    )
    for worker, numbers in sorted(pools.items()):
        idle.add_metric([worker], numbers.get("idle", 0))
        keys.add_metric([worker], numbers.get("keys", 0))
        handouts.add_metric([worker, "hit"], numbers.get("hits", 0))
        handouts.add_metric([worker, "miss"], numbers.get("misses", 0))
        discarded.add_metric([worker], numbers.get("discarded", 0))
    yield from (idle, keys, handouts, discarded)


@router.get("/metrics", response_class=Response)
def metrics(
    request: Request,
    services: ServicesDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Response:
    """Service-wide numbers: any valid key may read them, or anyone with `metrics_public`."""
    if not services.settings.metrics_public:
        authenticate(services.stores.keys, request.headers.get("authorization"))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(services))
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")
