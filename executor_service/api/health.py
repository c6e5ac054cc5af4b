"""Liveness and readiness, without a key: for load balancers and start scripts."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from executor_service.api.deps import ServicesDep
from executor_service.api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(services: ServicesDep) -> JSONResponse:
    """Ready when Redis answers and keeps what it accepts, a worker's heartbeat is fresh, every
    image is built, and this process is not shutting down (it turns 503 first, then stops)."""
    stores = services.stores
    redis_ok = stores.health.ping()
    persistent = redis_ok and (
        stores.health.persistent() or not services.settings.require_persistence
    )
    worker_ok = redis_ok and stores.workers.any_alive()
    present = stores.workers.images_present() if redis_ok else {}
    images_ok = bool(present) and all(
        present.get(name, False) for name in services.planner.catalogue.images
    )
    draining = services.draining.is_set()
    body = Readiness(
        redis=redis_ok,
        persistence=persistent,
        worker=worker_ok,
        images=images_ok,
        draining=draining,
    )
    ready = redis_ok and persistent and worker_ok and images_ok and not draining
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
