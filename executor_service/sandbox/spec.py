"""Pure data that describes a sandbox and a run in it, and what a run produced.

These types cross the layers below the API (policy, worker, the store in Redis), so they hold no
behaviour that needs Docker and serialise to plain JSON. Callers never see them as they are: the
API maps a run's result onto its own wire model.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from executor_service.egress.audit import EgressRecord

# Hard bounds no policy may exceed: they keep a typo in a YAML file from turning into a 1 TB limit.
MAX_WALL_TIME_S = 3600.0
MAX_MEMORY_MB = 16_384
MAX_PIDS = 4096
MAX_NOFILE = 65_536
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
MAX_WORKSPACE_MB = 16_384
MAX_CPUS = 64.0
# Under gVisor (runsc) the sandbox's pids limit also counts gVisor's own threads: below about 100
# a container cannot even start its first exec, so a runsc sandbox gets at least this many.
GVISOR_MIN_PIDS = 128


class Limits(BaseModel):
    """Resource ceilings of one sandbox: a policy holds the maxima, a request may lower them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wall_time_s: Annotated[float, Field(gt=0, le=MAX_WALL_TIME_S)] = 10.0
    cpu_time_s: Annotated[int, Field(gt=0, le=int(MAX_WALL_TIME_S))] = 10
    cpus: Annotated[float, Field(gt=0, le=MAX_CPUS)] = 1.0
    memory_mb: Annotated[int, Field(ge=16, le=MAX_MEMORY_MB)] = 256
    pids: Annotated[int, Field(ge=8, le=MAX_PIDS)] = 64
    nofile: Annotated[int, Field(ge=16, le=MAX_NOFILE)] = 256
    output_bytes: Annotated[int, Field(ge=1024, le=MAX_OUTPUT_BYTES)] = 1024 * 1024
    workspace_mb: Annotated[int, Field(ge=1, le=MAX_WORKSPACE_MB)] = 64
    tmp_mb: Annotated[int, Field(ge=1, le=MAX_WORKSPACE_MB)] = 16


class LimitsOverride(BaseModel):
    """A request's wish to run with lower limits; any field left out keeps the policy's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wall_time_s: Annotated[float, Field(gt=0)] | None = None
    cpu_time_s: Annotated[int, Field(gt=0)] | None = None
    cpus: Annotated[float, Field(gt=0)] | None = None
    memory_mb: Annotated[int, Field(gt=0)] | None = None
    pids: Annotated[int, Field(gt=0)] | None = None
    nofile: Annotated[int, Field(gt=0)] | None = None
    output_bytes: Annotated[int, Field(gt=0)] | None = None
    workspace_mb: Annotated[int, Field(gt=0)] | None = None
    tmp_mb: Annotated[int, Field(gt=0)] | None = None


@dataclass(frozen=True)
class Mount:
    """A host directory shown read-only inside the sandbox; only a policy may name one."""

    host_path: str
    sandbox_path: str


@dataclass(frozen=True)
class SandboxConfig:
    """Everything needed to prepare one hardened container, before any code is known."""

    image: str
    limits: Limits
    mounts: tuple[Mount, ...] = ()
    runtime: str | None = None  # None: the engine's default (runc); "runsc": gVisor
    labels: Mapping[str, str] = field(default_factory=dict)
    # A host directory where the worker's egress proxy listens (proxy.sock): None for no network.
    egress_dir: str | None = None
    # The image has Python 3: a pooled sandbox of it can wait with a ready interpreter (launcher).
    ready_python: bool = False
    # The container's name (an execution's id): a pool member gets it when handed out, since
    # labels are fixed at creation, so an execution's container can always be found by name.
    name: str | None = None


@dataclass(frozen=True)
class Program:
    """One run inside a prepared sandbox: files to place in the workspace, then a command."""

    argv: tuple[str, ...]
    files: Mapping[str, bytes] = field(default_factory=dict)
    stdin: bytes = b""
    env: Mapping[str, str] = field(default_factory=dict)
    collect: tuple[str, ...] = ()  # glob patterns, relative to the workspace, of files to return
    max_files_out: int = 16
    max_file_out_bytes: int = 1024 * 1024
    # Set in an interpreter session: the code to run as a cell in the session's kernel (argv is
    # then unused).
    cell: str | None = None


class RunStatus(enum.StrEnum):
    """How a run ended. Everything the user's code can do is one of these, never an exception."""

    OK = "ok"
    ERROR = "error"  # the program exited non-zero
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    CANCELLED = "cancelled"


class OutputFile(BaseModel):
    """A file the run left in its workspace and the caller asked for (base64 in JSON).

    A file that cannot be returned (it passes through a symlink, is over the size limit, is not
    there although named exactly, ...) is still listed, with empty content and the reason in
    `error`: one bad file never fails the run.
    """

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    path: str
    size_bytes: int
    content: bytes
    truncated: bool = False
    error: str | None = None


class RichOutput(BaseModel):
    """One display a cell produced (a plot, a table's HTML, a value's repr), as its MIME bundle
    holds it: text as UTF-8, images as their bytes (base64 in JSON). A display over its cap keeps
    what fits of a text and nothing of an image, with `truncated` set and the whole size."""

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    mime_type: Literal["text/plain", "text/html", "image/png"]
    data: bytes
    size_bytes: int
    truncated: bool = False


class RunResult(BaseModel):
    """What one run produced, as the runner measured it."""

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    status: RunStatus
    exit_code: int | None
    stdout: str
    stderr: str
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    wall_time_s: float
    cpu_time_s: float | None = None
    memory_peak_bytes: int | None = None
    files: tuple[OutputFile, ...] = ()
    message: str = ""  # a person-readable reason for any status but ok
    # Every connection the code asked the egress proxy for (policies with an allowlist only).
    egress: tuple[EgressRecord, ...] = ()
    egress_dropped: int = 0  # records beyond egress.audit.MAX_RECORDS, counted only
    # What an interpreter session's cell displayed, in order (each display's richest forms).
    outputs: tuple[RichOutput, ...] = ()
