"""What the MCP tools answer: structured models, mapped from the service's records.

Each model is both a tool's published output schema and its `structuredContent`; the readable
text block beside it is made here too, so a model that reads only text sees the same facts.
"""

from __future__ import annotations

import base64
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from executor_service.jobs.execution import Execution, ExecutionState

# The MCP answer's own names for how a run ended (the tool's published output schema), not the
# runner's enum: a change there must not change this wire without a decision here.
Status = Literal["ok", "error", "timeout", "memory_limit", "output_limit", "cancelled"]
STATUSES: frozenset[str] = frozenset(get_args(Status))


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunOutput(_Output):
    """How one run ended. A non-zero exit or a timeout is a result like any other."""

    execution_id: str
    session_id: str | None = None
    status: Status
    exit_code: int | None
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    timed_out: bool
    wall_time_s: float | None
    message: str = ""


class SessionOutput(_Output):
    session_id: str
    language: str
    policy: str
    expires_at: str
    idle_timeout_s: int
    max_lifetime_s: int


class WrittenFile(_Output):
    path: str
    size_bytes: int


class FileContent(_Output):
    """A workspace file; text that is not UTF-8 comes back base64-encoded."""

    path: str
    size_bytes: int
    encoding: Literal["utf-8", "base64"]
    content: str


class FileEntry(_Output):
    path: str
    size_bytes: int


class FileListing(_Output):
    files: list[FileEntry]
    truncated: bool  # the workspace holds more files than one listing returns


class SessionClosed(_Output):
    session_id: str
    closed: bool


def run_output(execution: Execution) -> RunOutput:
    """A finished or cancelled execution as the tool's answer (a failed one is a tool error)."""
    result = execution.result
    session_id = execution.request.session_id
    if result is None:
        # Cancelled before it produced anything (a failed record never reaches here).
        return RunOutput(
            execution_id=execution.id,
            session_id=session_id,
            status="cancelled",
            exit_code=None,
            stdout="",
            stderr="",
            stdout_truncated=False,
            stderr_truncated=False,
            timed_out=False,
            wall_time_s=None,
            message=f"the execution ended {execution.state.value} before it ran",
        )
    return RunOutput(
        execution_id=execution.id,
        session_id=session_id,
        status=result.status.value,
        exit_code=result.exit_code,
        stdout=result.stdout,
        stderr=result.stderr,
        stdout_truncated=result.stdout_truncated,
        stderr_truncated=result.stderr_truncated,
        timed_out=result.status.value == "timeout",
        wall_time_s=result.wall_time_s,
        message=result.message,
    )


def is_answer(execution: Execution) -> bool:
    """Finished and cancelled runs are answers; a failed one is the service's error."""
    return execution.state in (ExecutionState.FINISHED, ExecutionState.CANCELLED)


def run_text(output: RunOutput) -> str:
    """The run for a reader: the outcome on one line, then each stream under its own heading."""
    outcome = f"status: {output.status}"
    if output.exit_code is not None:
        outcome += f", exit code {output.exit_code}"
    if output.wall_time_s is not None:
        outcome += f", {output.wall_time_s:.2f} s"
    lines = [outcome]
    if output.timed_out:
        lines.append("the run hit its wall-time limit and was killed")
    if output.message and not output.timed_out:
        lines.append(output.message)
    for name, text, cut in (
        ("stdout", output.stdout, output.stdout_truncated),
        ("stderr", output.stderr, output.stderr_truncated),
    ):
        if text or cut:
            lines.append(f"--- {name}{' (truncated at the output limit)' if cut else ''} ---")
            lines.append(text.rstrip("\n"))
    return "\n".join(lines)


def file_content(path: str, data: bytes) -> FileContent:
    try:
        return FileContent(
            path=path, size_bytes=len(data), encoding="utf-8", content=data.decode("utf-8")
        )
    except UnicodeDecodeError:
        return FileContent(
            path=path,
            size_bytes=len(data),
            encoding="base64",
            content=base64.b64encode(data).decode("ascii"),
        )
