"""Routes that say what a key may use: its policies and the language runtimes."""

from __future__ import annotations

from fastapi import APIRouter

from executor_service.api.deps import CurrentKey, ServicesDep
from executor_service.api.error_responses import ERROR_RESPONSES
from executor_service.api.wire.catalogue import PolicyList, RuntimeList, policy_list, runtime_list

router = APIRouter(prefix="/v1", tags=["catalogue"], responses=ERROR_RESPONSES)


@router.get("/policies")
def list_policies(key: CurrentKey, services: ServicesDep) -> PolicyList:
    """The policies this key may use; host paths of data mounts are never shown."""
    return policy_list(services.planner.allowed_policies(key))


@router.get("/runtimes")
def list_runtimes(_key: CurrentKey, services: ServicesDep) -> RuntimeList:
    """Every language of every image; `present` is what the workers last saw on the engine."""
    return runtime_list(
        services.planner.catalogue,
        services.settings.image_prefix,
        services.stores.workers.images_present(),
    )
