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
        queue = GaugeMetricFamily(f"{NAMESPACE}_queue_length", "Executions waiting for a worker")
        queue.add_metric([], self._services.stores.executions.queue_length())
        yield queue


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
