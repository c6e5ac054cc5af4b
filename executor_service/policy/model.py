"""Typed, closed, frozen policy documents (schema version 1)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from executor_service.errors import InvalidRequest, LimitAboveCeiling
from executor_service.sandbox.spec import GVISOR_MIN_PIDS, Limits, LimitsOverride, Mount

NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"

# Where sandboxed code lives; a data mount may not cover any of these.
RESERVED_SANDBOX_PATHS = (
    "/",
    "/workspace",
    "/tmp",  # noqa: S108 (a path inside the sandbox, never opened here)
    "/proc",
    "/sys",
    "/dev",
    "/etc",
    "/usr",
    "/bin",
)


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileLimits(_Closed):
    """How much a request may bring in and take out, in count and bytes."""

    max_code_bytes: Annotated[int, Field(ge=1, le=16 * 1024 * 1024)] = 256 * 1024
    max_stdin_bytes: Annotated[int, Field(ge=0, le=64 * 1024 * 1024)] = 1024 * 1024
    max_files_in: Annotated[int, Field(ge=0, le=1000)] = 32
    max_file_in_bytes: Annotated[int, Field(ge=0, le=256 * 1024 * 1024)] = 4 * 1024 * 1024
    max_files_out: Annotated[int, Field(ge=0, le=1000)] = 16
    max_file_out_bytes: Annotated[int, Field(ge=0, le=256 * 1024 * 1024)] = 4 * 1024 * 1024


class NetworkPolicy(_Closed):
    """Network access; `none` is the only mode until the egress allowlist exists."""

    mode: Literal["none"] = "none"


class DataMount(_Closed):
    """A host directory the policy shows read-only to every sandbox it governs."""

    host_path: str
    sandbox_path: str

    @field_validator("host_path", "sandbox_path")
    @classmethod
    def _absolute_and_plain(cls, value: str) -> str:
        path = PurePosixPath(value)
        if not path.is_absolute() or ".." in path.parts:
            raise ValueError("must be an absolute path without '..'")
        return str(path)

    @field_validator("sandbox_path")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        path = PurePosixPath(value)
        for reserved in RESERVED_SANDBOX_PATHS:
            if path == PurePosixPath(reserved) or (
                reserved != "/" and PurePosixPath(reserved) in path.parents
            ):
                raise ValueError(f"may not be or lie under {reserved}")
        return value

    def to_mount(self) -> Mount:
        return Mount(host_path=self.host_path, sandbox_path=self.sandbox_path)


class Policy(_Closed):
    """What code run under this policy may use. A request may tighten limits, never loosen them."""

    schema_version: Literal[1]
    name: Annotated[str, Field(pattern=NAME)]
    description: str = ""
    languages: Annotated[dict[str, Annotated[str, Field(pattern=NAME)]], Field(min_length=1)]
    limits: Limits
    files: FileLimits = FileLimits()
    network: NetworkPolicy = NetworkPolicy()
    mounts: tuple[DataMount, ...] = ()
    runtime: Literal["runc", "runsc"] = "runc"

    @field_validator("languages")
    @classmethod
    def _language_names(cls, value: dict[str, str]) -> dict[str, str]:
        for language in value:
            if not re.fullmatch(NAME, language):
                raise ValueError(f"language {language!r} is not a plain lower-case name")
        return value

    @field_validator("runtime")
    @classmethod
    def _room_for_gvisor(cls, value: str, info: ValidationInfo) -> str:
        limits = info.data.get("limits")  # absent when the limits themselves were refused
        if value == "runsc" and limits is not None and limits.pids < GVISOR_MIN_PIDS:
            raise ValueError(
                f"runsc needs limits.pids of at least {GVISOR_MIN_PIDS} (gVisor's own threads "
                f"count against it), not {limits.pids}"
            )
        return value

    @model_validator(mode="after")
    def _distinct_mounts(self) -> Policy:
        targets = [mount.sandbox_path for mount in self.mounts]
        if len(targets) != len(set(targets)):
            raise ValueError("two mounts share a sandbox_path")
        return self

    def effective_limits(self, override: LimitsOverride | None) -> Limits:
        """The policy's limits lowered by `override`; raise if any value would loosen them."""
        if override is None:
            return self.limits
        wanted = override.model_dump(exclude_none=True)
        for field_name, value in wanted.items():
            ceiling = getattr(self.limits, field_name)
            if value > ceiling:
                raise LimitAboveCeiling(
                    f"{field_name}={value} is above policy {self.name!r}'s ceiling of {ceiling}",
                    field=f"limits.{field_name}",
                )
        if self.runtime == "runsc" and wanted.get("pids", GVISOR_MIN_PIDS) < GVISOR_MIN_PIDS:
            # Fewer would not tighten anything: the sandbox could not start at all.
            raise InvalidRequest(
                f"pids={wanted['pids']} is below {GVISOR_MIN_PIDS}, the least policy "
                f"{self.name!r} can run with under gVisor (its own threads count)",
                field="limits.pids",
            )
        return self.limits.model_copy(update=wanted)
