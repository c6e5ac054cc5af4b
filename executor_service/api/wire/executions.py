"""How an execution looks to a caller (GET /v1/executions/{id}, submit's answer, the SSE result
event), and the mappers from the stored record and the runner's result onto it.

The tenant, the request, the claim and its lease stay server-side: only what is mapped here is
ever sent.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from executor_service.egress import audit
from executor_service.jobs import execution as records
from executor_service.sandbox import spec

# Bytes in JSON are standard base64 (RFC 4648 section 4), what the docs and every client's
# b64decode expect; pydantic's own "base64" writes the URL-safe alphabet, which a standard decoder
# silently misreads. Requests are read in either alphabet.
Base64Bytes = Annotated[
    bytes,
    PlainSerializer(
        lambda data: base64.b64encode(data).decode(), return_type=str, when_used="json"
    ),
]


class ExecutionState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"


class RunStatus(enum.StrEnum):
    """How a run ended. Everything the user's code can do is one of these, never an exception."""

    OK = "ok"
    ERROR = "error"  # the program exited non-zero
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    CANCELLED = "cancelled"


# Why the proxy refused a connection, or cut one short ("" for a connection that ran its course).
EgressReason = Literal[
    "",
    "not_allowlisted",
    "denied_address",
    "resolve_failed",
    "connect_failed",
    "connection_cap",
    "byte_cap",
    "bad_request",
]


class OutputFile(BaseModel):
    """A file the run left in its workspace and the caller asked for (base64 in JSON).

    A file that cannot be returned (it passes through a symlink, is over the size limit, is not
    there although named exactly, ...) is still listed, with empty content and the reason in
    `error`: one bad file never fails the run.
    """

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    path: str
    size_bytes: int
    content: Base64Bytes
    truncated: bool = False
    error: str | None = None


class EgressRecord(BaseModel):
    """One connection the code asked for, and what became of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str  # as the code named it: a host name or an address literal
    port: int
    allowed: bool
    reason: EgressReason = ""
    method: Literal["CONNECT", "HTTP"] = "CONNECT"
    address: str | None = None  # the address connected to, or the denied one
    bytes_sent: int = 0  # from the sandbox to the destination
    bytes_received: int = 0  # from the destination to the sandbox


class RichOutput(BaseModel):
    """One display of an interpreter session's cell: a plot (image/png, base64 in JSON), a
    table's text/html, a value's text/plain. Over its cap, a text keeps what fits and an image
    nothing; `truncated` says so and `size_bytes` gives the whole size."""

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    mime_type: Literal["text/plain", "text/html", "image/png"]
    data: Base64Bytes
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
    egress_dropped: int = 0  # records beyond the log's bound, counted only
    # What an interpreter session's cell displayed, in order; empty for any other run.
    outputs: tuple[RichOutput, ...] = ()


class ExecutionError(BaseModel):
    """Why the service, not the user's code, could not finish an execution."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    message: str


class ExecutionView(BaseModel):
    """The wire form of an execution; the tenant, the request and the claim stay server-side."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(examples=["ex_5f0c6a1d2b3e4f5a6b7c8d9e0f1a2b3c"])]
    state: ExecutionState
    language: Annotated[str, Field(examples=["python"])]
    policy: Annotated[str, Field(examples=["default"])]
    session_id: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: RunResult | None = None
    error: ExecutionError | None = None


class ExecutionList(BaseModel):
    executions: list[ExecutionView]


# mappers: record -> wire ------------------------------------------------------------------------


def execution_view(execution: records.Execution) -> ExecutionView:
    request = execution.request
    return ExecutionView(
        id=execution.id,
        state=ExecutionState(execution.state.value),
        language=request.language,
        policy=request.policy,
        session_id=request.session_id,
        created_at=execution.created_at,
        started_at=execution.started_at,
        finished_at=execution.finished_at,
        result=None if execution.result is None else run_result(execution.result),
        error=None if execution.error is None else execution_error(execution.error),
    )


def execution_list(executions: Iterable[records.Execution]) -> ExecutionList:
    return ExecutionList(executions=[execution_view(execution) for execution in executions])


def execution_error(error: records.ExecutionError) -> ExecutionError:
    return ExecutionError(code=error.code, message=error.message)


def run_result(result: spec.RunResult) -> RunResult:
    return RunResult(
        status=RunStatus(result.status.value),
        exit_code=result.exit_code,
        stdout=result.stdout,
        stderr=result.stderr,
        stdout_truncated=result.stdout_truncated,
        stderr_truncated=result.stderr_truncated,
        wall_time_s=result.wall_time_s,
        cpu_time_s=result.cpu_time_s,
        memory_peak_bytes=result.memory_peak_bytes,
        files=tuple(output_file(item) for item in result.files),
        message=result.message,
        egress=tuple(egress_record(record) for record in result.egress),
        egress_dropped=result.egress_dropped,
        outputs=tuple(rich_output(item) for item in result.outputs),
    )


def rich_output(item: spec.RichOutput) -> RichOutput:
    return RichOutput(
        mime_type=item.mime_type,
        data=item.data,
        size_bytes=item.size_bytes,
        truncated=item.truncated,
    )


def output_file(item: spec.OutputFile) -> OutputFile:
    return OutputFile(
        path=item.path,
        size_bytes=item.size_bytes,
        content=item.content,
        truncated=item.truncated,
        error=item.error,
    )


def egress_record(record: audit.EgressRecord) -> EgressRecord:
    return EgressRecord(
        host=record.host,
        port=record.port,
        allowed=record.allowed,
        reason=record.reason,
        method=record.method,
        address=record.address,
        bytes_sent=record.bytes_sent,
        bytes_received=record.bytes_received,
    )
