"""What a caller sends to run code (POST /v1/executions and its batch), and how it becomes the
record's `ExecutionRequest`.

The shapes and bounds a body must meet live here; what a value means (a policy's ceilings, the
egress rules of a destination) stays with the policy, which judges every mapped request.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Base64Bytes,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from executor_service.jobs import execution as records
from executor_service.policy import model as policy_model
from executor_service.sandbox import spec

MAX_ARGS = 256
MAX_COLLECT = 64
# The policy's own pattern of a host name, so a request can name only what a policy file can.
HOST_PATTERN = policy_model.HOST_PATTERN


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputFile(_Body):
    """A file the caller places in the workspace before the code runs."""

    path: Annotated[str, Field(min_length=1, max_length=1024, examples=["data/in.csv"])]
    content: Annotated[Base64Bytes, Field(examples=["YSxiCjEsMgo="])]


class LimitsOverride(_Body):
    """A request's wish to run with lower limits; any field left out keeps the policy's value.

    Each may only tighten the policy's limit (a higher one is refused: 422 limit_above_ceiling):
    wall_time_s (wall clock, then the sandbox is killed: status timeout), cpu_time_s (CPU
    seconds, the cpu ulimit), cpus (share of CPUs), memory_mb (RAM, no swap: memory_limit),
    pids (processes and threads), nofile (open files), output_bytes (kept of stdout and of
    stderr; more ends the run: output_limit, truncated), workspace_mb (size of /workspace),
    tmp_mb (size of /tmp).
    """

    wall_time_s: Annotated[float, Field(gt=0)] | None = None
    cpu_time_s: Annotated[int, Field(gt=0)] | None = None
    cpus: Annotated[float, Field(gt=0)] | None = None
    memory_mb: Annotated[int, Field(gt=0)] | None = None
    pids: Annotated[int, Field(gt=0)] | None = None
    nofile: Annotated[int, Field(gt=0)] | None = None
    output_bytes: Annotated[int, Field(gt=0)] | None = None
    workspace_mb: Annotated[int, Field(gt=0)] | None = None
    tmp_mb: Annotated[int, Field(gt=0)] | None = None


class Destination(_Body):
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
        # Names are case-insensitive: checked against the pattern as the policy will store them.
        return value.lower().rstrip(".") if isinstance(value, str) else value

    @model_validator(mode="after")
    def _acceptable(self) -> Destination:
        # One set of rules for policy files and requests: the policy's own Destination says
        # whether the values mean something (an address given as host, a malformed network,
        # both or neither), and its reason is the caller's.
        try:
            policy_destination(self)
        except ValidationError as exc:
            raise ValueError(_reason(exc)) from None
        return self


class NetworkOverride(_Body):
    """A request's narrower network: `none`, fewer destinations, or lower caps; never more."""

    mode: Literal["none", "allowlist"] | None = None
    allow: tuple[Destination, ...] | None = None
    max_connections: Annotated[int, Field(ge=1)] | None = None
    max_bytes: Annotated[int, Field(ge=1)] | None = None


class ExecutionCreate(_Body):
    """One program to run. `code` goes to the language's main file; `files` around it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"language": "python", "code": "print(1)"},
                {
                    "language": "python",
                    "code": "import pandas as pd\nprint(pd.read_csv('data/in.csv').sum())",
                    "files": [{"path": "data/in.csv", "content": "YSxiCjEsMgo="}],
                    "policy": "default",
                    "limits": {"wall_time_s": 5, "memory_mb": 128},
                    "collect": ["out/*.csv"],
                    "wait": True,
                    "wait_timeout_s": 30,
                },
            ]
        },
    )

    language: Annotated[str, Field(min_length=1, max_length=64, examples=["python"])]
    code: Annotated[str | None, Field(examples=["print(1)"])] = None
    files: Annotated[list[InputFile], Field(max_length=1000)] = []
    stdin: str = ""
    # No NUL in an argument: no program could receive one (execve ends the string there).
    args: Annotated[
        list[Annotated[str, Field(max_length=4096, pattern=r"^[^\x00]*$")]],
        Field(max_length=MAX_ARGS),
    ] = []
    policy: Annotated[str | None, Field(max_length=64, examples=["default"])] = None
    limits: LimitsOverride | None = None
    # Narrow the policy's egress: {"mode": "none"}, fewer destinations, or lower caps.
    network: NetworkOverride | None = None
    session_id: Annotated[str | None, Field(max_length=64)] = None
    collect: Annotated[
        list[Annotated[str, Field(max_length=1024)]],
        Field(max_length=MAX_COLLECT, examples=[["*.png", "out/*.csv"]]),
    ] = []
    wait: bool = False
    wait_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30.0


class ExecutionBatch(_Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "executions": [
                        {"language": "python", "code": "print(1)"},
                        {"language": "bash", "code": "echo 2"},
                    ]
                }
            ]
        },
    )

    executions: Annotated[list[ExecutionCreate], Field(min_length=1, max_length=100)]


# mappers: wire -> record ------------------------------------------------------------------------


def execution_request(body: ExecutionCreate, policy: str) -> records.ExecutionRequest:
    """The record of what `body` asks for, under the policy admission resolved for it."""
    return records.ExecutionRequest(
        language=body.language,
        code=body.code,
        files=tuple(input_file(item) for item in body.files),
        stdin=body.stdin,
        args=tuple(body.args),
        policy=policy,
        limits=None if body.limits is None else limits_override(body.limits),
        network=None if body.network is None else network_override(body.network),
        session_id=body.session_id,
        collect=tuple(body.collect),
    )


def input_file(item: InputFile) -> records.InputFile:
    # The content was decoded and both fields checked against the same bounds when the body was
    # read: validating again would decode bytes that are already bytes, a second time.
    return records.InputFile.model_construct(path=item.path, content=item.content)


def limits_override(limits: LimitsOverride) -> spec.LimitsOverride:
    return spec.LimitsOverride(
        wall_time_s=limits.wall_time_s,
        cpu_time_s=limits.cpu_time_s,
        cpus=limits.cpus,
        memory_mb=limits.memory_mb,
        pids=limits.pids,
        nofile=limits.nofile,
        output_bytes=limits.output_bytes,
        workspace_mb=limits.workspace_mb,
        tmp_mb=limits.tmp_mb,
    )


def network_override(network: NetworkOverride) -> policy_model.NetworkOverride:
    allow = None if network.allow is None else tuple(policy_destination(d) for d in network.allow)
    return policy_model.NetworkOverride(
        mode=network.mode,
        allow=allow,
        max_connections=network.max_connections,
        max_bytes=network.max_bytes,
    )


def policy_destination(destination: Destination) -> policy_model.Destination:
    return policy_model.Destination(
        host=destination.host, cidr=destination.cidr, ports=destination.ports
    )


def _reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return str(first["msg"]).removeprefix("Value error, ")
