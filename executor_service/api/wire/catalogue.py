"""What a key may use, as a caller sees it (/v1/policies, /v1/runtimes), and the mappers from
the loaded policies and the image catalogue. Host paths of data mounts are never shown."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, Field

from executor_service.policy.model import Policy
from executor_service.sandbox.catalogue import Catalogue


class MountView(BaseModel):
    """Only where a mount appears inside the sandbox; the host path is never shown."""

    sandbox_path: str


class PolicyView(BaseModel):
    name: Annotated[str, Field(examples=["default"])]
    description: str
    languages: Annotated[dict[str, str], Field(examples=[{"python": "python"}])]
    limits: dict[str, Any]
    files: dict[str, Any]
    network: Annotated[dict[str, Any], Field(examples=[{"mode": "none"}])]
    mounts: list[MountView]


class PolicyList(BaseModel):
    policies: list[PolicyView]


class RuntimeView(BaseModel):
    language: Annotated[str, Field(examples=["python"])]
    image: Annotated[str, Field(examples=["agent-sandbox/python:1"])]
    version: Annotated[str, Field(examples=["3.11"])]
    present: bool


class RuntimeList(BaseModel):
    runtimes: list[RuntimeView]


# mappers: policy and catalogue -> wire ----------------------------------------------------------


def policy_view(policy: Policy) -> PolicyView:
    # Limits, files and network are shown as the policy file states them (its field names are
    # the request's too), so a caller can see how far it may tighten each.
    return PolicyView(
        name=policy.name,
        description=policy.description,
        languages=dict(policy.languages),
        limits=policy.limits.model_dump(),
        files=policy.files.model_dump(),
        network=policy.network.model_dump(exclude_none=True),
        mounts=[MountView(sandbox_path=mount.sandbox_path) for mount in policy.mounts],
    )


def policy_list(policies: Iterable[Policy]) -> PolicyList:
    return PolicyList(policies=[policy_view(policy) for policy in policies])


def runtime_list(catalogue: Catalogue, prefix: str, present: Mapping[str, bool]) -> RuntimeList:
    """Every language of every image; `present` says which images the workers last saw built."""
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
