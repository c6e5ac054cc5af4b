"""Wire models of the service's v1 contract; responses ignore unknown fields (newer servers)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ExecutionState = Literal["queued", "running", "finished", "cancelled", "failed"]
RunStatus = Literal["ok", "error", "timeout", "memory_limit", "output_limit", "cancelled"]
FINAL_STATES: frozenset[str] = frozenset({"finished", "cancelled", "failed"})


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputFile(_Request):
    """A file placed in /workspace before the code runs; content is base64 on the wire."""

    path: str
    content: str

    @classmethod
    def from_bytes(cls, path: str, data: bytes) -> InputFile:
        return cls(path=path, content=base64.b64encode(data).decode("ascii"))


class LimitsOverride(_Request):
    """Lower limits for one execution; any left out keep the policy's value.

    Each must be above zero and at most the policy's own (``GET /v1/policies`` shows them).
    The service judges: one above the policy's is refused with ``LimitAboveCeiling``, one at or
    below zero with ``ValidationFailed`` (both 422, field ``limits.<name>``), so a request may
    tighten a limit, never loosen it.

    Attributes:
        wall_time_s: wall-clock seconds; then the sandbox is killed (status ``timeout``).
        cpu_time_s: CPU seconds (the cpu ulimit).
        cpus: share of CPUs, e.g. ``0.5``.
        memory_mb: memory, with no swap; over it the run ends as ``memory_limit``.
        pids: processes and threads at once.
        nofile: open files at once.
        output_bytes: bytes kept of stdout and of stderr; more ends the run as
            ``output_limit`` with the output marked truncated.
        workspace_mb: size of the writable ``/workspace``.
        tmp_mb: size of the writable ``/tmp``.
    """

    wall_time_s: float | None = None
    cpu_time_s: int | None = None
    cpus: float | None = None
    memory_mb: int | None = None
    pids: int | None = None
    nofile: int | None = None
    output_bytes: int | None = None
    workspace_mb: int | None = None
    tmp_mb: int | None = None


class Destination(_Request):
    """One place egress may go: a host name (or ``*.suffix``) or a network, on some ports."""

    host: str | None = None
    cidr: str | None = None
    ports: list[int] = Field(default_factory=lambda: [443])


class NetworkOverride(_Request):
    """A narrower network than the policy's: ``mode="none"``, fewer destinations, lower caps.

    The service refuses (422) anything that would widen the policy's allowlist.
    """

    mode: Literal["none", "allowlist"] | None = None
    allow: list[Destination] | None = None
    max_connections: int | None = None
    max_bytes: int | None = None


class ExecutionCreate(_Request):
    """The body of POST /v1/executions (and one item of a batch), named as the service names it."""

    language: str = "python"
    code: str | None = None
    files: list[InputFile] = Field(default_factory=list)
    stdin: str = ""
    args: list[str] = Field(default_factory=list)
    policy: str | None = None
    limits: LimitsOverride | None = None
    network: NetworkOverride | None = None
    session_id: str | None = None
    collect: list[str] = Field(default_factory=list)
    wait: bool = False
    wait_timeout_s: float | None = None


class OutputFile(_Response):
    """A collected file; `error` says why it could not be returned (e.g. through a symlink)."""

    path: str
    size_bytes: int
    content: str = ""
    truncated: bool = False
    error: str | None = None

    @property
    def data(self) -> bytes:
        # Standard base64; the URL-safe alphabet (older services) reads too.
        return base64.b64decode(self.content.replace("-", "+").replace("_", "/"))


class EgressRecord(_Response):
    """One connection the code asked the egress proxy for, and what became of it."""

    host: str
    port: int
    allowed: bool
    reason: str = ""  # why it was denied or cut: not_allowlisted, denied_address, byte_cap, ...
    method: str = "CONNECT"
    address: str | None = None
    bytes_sent: int = 0
    bytes_received: int = 0


class RichOutput(_Response):
    """One display of an interpreter session's cell: a plot, a table's HTML, a value's repr."""

    mime_type: str  # text/plain, text/html or image/png
    data: str = ""  # base64 of the bytes: UTF-8 text, or the image
    size_bytes: int = 0
    truncated: bool = False

    @property
    def content(self) -> bytes:
        # The service's JSON carries bytes as URL-safe base64 (pydantic's); either alphabet reads.
        return base64.urlsafe_b64decode(self.data.replace("+", "-").replace("/", "_"))


class RunResult(_Response):
    """What the code itself did; a failing program is a status here, never an exception."""

    status: RunStatus
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    wall_time_s: float | None = None
    cpu_time_s: float | None = None
    memory_peak_bytes: int | None = None
    files: list[OutputFile] = Field(default_factory=list)
    message: str = ""
    egress: list[EgressRecord] = Field(default_factory=list)  # policies with an allowlist only
    egress_dropped: int = 0
    outputs: list[RichOutput] = Field(default_factory=list)  # interpreter sessions' displays


class ExecutionErrorInfo(_Response):
    code: str
    message: str = ""


class Execution(_Response):
    id: str
    state: ExecutionState
    language: str
    policy: str | None = None
    session_id: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: RunResult | None = None
    error: ExecutionErrorInfo | None = None

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


class Session(_Response):
    id: str
    policy: str | None = None
    language: str | None = None
    kind: Literal["plain", "interpreter"] = "plain"
    state: Literal["active", "expired", "deleted"]
    created_at: datetime
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    idle_timeout_s: float | None = None
    max_lifetime_s: float | None = None


class FileInfo(_Response):
    path: str
    size_bytes: int


class PolicyInfo(_Response):
    name: str
    description: str = ""
    languages: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, Any] = Field(default_factory=dict)
    network: dict[str, Any] = Field(default_factory=dict)


class RuntimeInfo(_Response):
    language: str
    image: str
    version: str
    present: bool


class StateEvent(_Response):
    kind: Literal["state"] = "state"
    state: ExecutionState


class OutputEvent(_Response):
    kind: Literal["output"] = "output"
    stream: Literal["stdout", "stderr"]
    data: str


class EgressEvent(_Response):
    """A connection the egress proxy refused, as it happened."""

    kind: Literal["egress"] = "egress"
    record: EgressRecord


class ResultEvent(_Response):
    kind: Literal["result"] = "result"
    execution: Execution


ExecutionEvent = Annotated[
    StateEvent | OutputEvent | EgressEvent | ResultEvent, Field(discriminator="kind")
]


class _ExecutionList(_Response):
    executions: list[Execution]


class _SessionList(_Response):
    sessions: list[Session]


class _FileList(_Response):
    files: list[FileInfo]


class _PolicyList(_Response):
    policies: list[PolicyInfo]


class _RuntimeList(_Response):
    runtimes: list[RuntimeInfo]
