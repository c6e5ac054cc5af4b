"""Typed, closed, frozen policy documents (schema version 1)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from executor_service.egress.rules import EgressGrant, EgressRule
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


# A DNS name of letters, digits and hyphens (lower case), optionally "*." for any name below it.
HOST_PATTERN = r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
MAX_EGRESS_BYTES = 16 * 1024**3
MAX_EGRESS_CONNECTIONS = 10_000


class Destination(_Closed):
    """One place egress may go: a host name (or `*.suffix`) or a network, on the listed ports.

    A name is matched as the code names it; the proxy then resolves it itself, and an address
    that is always denied (private, loopback, link-local, the host's own, ...) stays denied.
    A network (`cidr`) allows address literals in it (`http://203.0.113.7/`), within the same
    limits; a name is never resolved to find out whether it lies in one, so names that no rule
    lists never reach DNS (no exfiltration through lookups).
    """

    host: Annotated[str, Field(max_length=253, pattern=HOST_PATTERN)] | None = None
    cidr: str | None = None
    ports: Annotated[tuple[Annotated[int, Field(ge=1, le=65535)], ...], Field(min_length=1)] = (
        443,
    )

    @field_validator("host", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower().rstrip(".") if isinstance(value, str) else value

    @field_validator("host")
    @classmethod
    def _not_an_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return value  # a name, as it should be
        raise ValueError(f"{value!r} is an address: give it as cidr: {value}/32")

    @field_validator("cidr")
    @classmethod
    def _network(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_network(value))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a network such as 203.0.113.0/24: {exc}") from exc

    @model_validator(mode="after")
    def _one_target(self) -> Destination:
        if (self.host is None) == (self.cidr is None):
            raise ValueError("give either host or cidr")
        return self

    def rule(self) -> EgressRule:
        network = None if self.cidr is None else ipaddress.ip_network(self.cidr)
        return EgressRule(ports=frozenset(self.ports), host=self.host, network=network)


class NetworkPolicy(_Closed):
    """`none`: no network at all (the default). `allowlist`: only `allow`, through the proxy."""

    mode: Literal["none", "allowlist"] = "none"
    allow: tuple[Destination, ...] = ()
    # Per execution, both directions together: a bound on what one run can fetch or send.
    max_connections: Annotated[int, Field(ge=1, le=MAX_EGRESS_CONNECTIONS)] = 64
    max_bytes: Annotated[int, Field(ge=1024, le=MAX_EGRESS_BYTES)] = 256 * 1024 * 1024

    @model_validator(mode="after")
    def _allow_matches_mode(self) -> NetworkPolicy:
        if self.mode == "allowlist" and not self.allow:
            raise ValueError("mode allowlist needs at least one destination in allow")
        if self.mode == "none" and self.allow:
            raise ValueError("mode none allows nothing: remove allow, or set mode: allowlist")
        return self

    def grant(self) -> EgressGrant | None:
        if self.mode == "none":
            return None
        return EgressGrant(
            rules=tuple(destination.rule() for destination in self.allow),
            max_connections=self.max_connections,
            max_bytes=self.max_bytes,
        )


class NetworkOverride(_Closed):
    """A request's narrower network: `none`, fewer destinations, or lower caps; never more."""

    mode: Literal["none", "allowlist"] | None = None
    allow: tuple[Destination, ...] | None = None
    max_connections: Annotated[int, Field(ge=1)] | None = None
    max_bytes: Annotated[int, Field(ge=1)] | None = None


# Host directories no data mount may show, contain or lie in: the engine's socket and state, the
# host's kernel interfaces and devices, and root's home. A mount showing a Unix socket hands the
# sandbox whatever listens there (the engine's socket is the whole host), under runc as under
# gVisor (whose runtime may open host sockets in mounts: the egress relay needs it).
SENSITIVE_HOST_PATHS = (
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/var/run",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/etc/docker",
    "/root",
    "/boot",
)


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

    @field_validator("host_path")
    @classmethod
    def _not_sensitive(cls, value: str) -> str:
        path = PurePosixPath(value)
        if path == PurePosixPath("/"):
            raise ValueError("may not be the host's whole filesystem")
        for sensitive in map(PurePosixPath, SENSITIVE_HOST_PATHS):
            if path == sensitive or sensitive in path.parents or path in sensitive.parents:
                raise ValueError(
                    f"may not show, contain or lie under {sensitive} (the host's own state)"
                )
        return value

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
        # Validated, not copied: a copy would skip each limit's floor (memory_mb=1, pids=1).
        try:
            return Limits.model_validate({**self.limits.model_dump(), **wanted})
        except ValidationError as exc:
            error = exc.errors()[0]
            field_name = ".".join(str(part) for part in error["loc"])
            raise InvalidRequest(
                f"{field_name}={error.get('input')!r} is too small: {error['msg']}",
                field=f"limits.{field_name}",
            ) from exc

    def egress_grant(self, override: NetworkOverride | None) -> EgressGrant | None:
        """What the policy lets one execution reach, narrowed by `override`; None: no network.

        Like limits, a request may only narrow: each destination it lists must lie within one of
        the policy's (same or narrower name pattern or network, a subset of its ports), and its
        caps may only be lower.
        """
        grant = self.network.grant()
        if override is None:
            return grant
        if override.mode == "none":
            return None
        if grant is None:
            raise LimitAboveCeiling(
                f"policy {self.name!r} allows no network; choose a policy with an allowlist "
                "(GET /v1/policies shows each policy's network)",
                field="network",
            )
        rules = grant.rules
        if override.allow is not None:
            rules = tuple(
                self._within_allowlist(destination, grant, index)
                for index, destination in enumerate(override.allow)
            )
        caps = {"max_connections": grant.max_connections, "max_bytes": grant.max_bytes}
        for name, ceiling in caps.items():
            wanted = getattr(override, name)
            if wanted is not None and wanted > ceiling:
                raise LimitAboveCeiling(
                    f"{name}={wanted} is above policy {self.name!r}'s ceiling of {ceiling}",
                    field=f"network.{name}",
                )
        return EgressGrant(
            rules=rules,
            max_connections=override.max_connections or grant.max_connections,
            max_bytes=override.max_bytes or grant.max_bytes,
        )

    def _within_allowlist(
        self, destination: Destination, grant: EgressGrant, index: int
    ) -> EgressRule:
        rule = destination.rule()
        if any(allowed.covers(rule) for allowed in grant.rules):
            return rule
        allowed = ", ".join(str(item) for item in grant.rules)
        raise LimitAboveCeiling(
            f"{rule} is not within policy {self.name!r}'s allowlist ({allowed}); a request may "
            "only narrow it",
            field=f"network.allow.{index}",
        )
