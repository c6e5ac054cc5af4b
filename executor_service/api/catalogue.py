"""Routes that say what a key may use: its policies and the language runtimes."""

from __future__ import annotations

from fastapi import APIRouter

from executor_service.api.deps import CurrentKey, ServicesDep
from executor_service.api.error_responses import ERROR_RESPONSES
from executor_service.api.schemas import (
    MountView,
    PolicyList,
    PolicyView,
    RuntimeList,
    RuntimeView,
)

router = APIRouter(prefix="/v1", tags=["catalogue"], responses=ERROR_RESPONSES)


@router.get("/policies")
def list_policies(key: CurrentKey, services: ServicesDep) -> PolicyList:
    """The policies this key may use; host paths of data mounts are never shown."""
    return PolicyList(
        policies=[
            PolicyView(
                name=policy.name,
                description=policy.description,
                languages=dict(policy.languages),
                limits=policy.limits.model_dump(),
                files=policy.files.model_dump(),
                network=policy.network.model_dump(exclude_none=True),
                mounts=[MountView(sandbox_path=mount.sandbox_path) for mount in policy.mounts],
            )
            for policy in services.planner.allowed_policies(key)
        ]
    )


@router.get("/runtimes")
def list_runtimes(_key: CurrentKey, services: ServicesDep) -> RuntimeList:
    """Every language of every image; `present` is what the workers last saw on the engine."""
    catalogue = services.planner.catalogue
    present = services.stores.workers.images_present()
    prefix = services.settings.image_prefix
    return RuntimeList(
        runtimes=[
            RuntimeView(
                language=language,
                image=catalogue.image_ref(prefix, name),
                version=runtime.version,
                present=present.get(name, False),
            )
            for name, spec in sorted(catalogue.images.items())
            for language, runtime in sorted(spec.languages.items())
        ]
    )
