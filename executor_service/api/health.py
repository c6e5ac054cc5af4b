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
    """Ready when Redis answers, a worker's heartbeat is fresh, and every image is built."""
    store = services.store
    redis_ok = store.ping()
    worker_ok = redis_ok and store.any_worker_alive()
    present = store.images_present() if redis_ok else {}
    images_ok = bool(present) and all(
        present.get(name, False) for name in services.planner.catalogue.images
    )
    body = Readiness(redis=redis_ok, worker=worker_ok, images=images_ok)
    ready = redis_ok and worker_ok and images_ok
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
