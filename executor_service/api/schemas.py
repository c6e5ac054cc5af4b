"""Request and response bodies of the wire contract (v1), with examples for the OpenAPI page."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from executor_service.jobs.execution import ExecutionView, InputFile
from executor_service.jobs.session import SessionView
from executor_service.policy.model import NetworkOverride
from executor_service.sandbox.spec import LimitsOverride

MAX_ARGS = 256
MAX_COLLECT = 64


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    args: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=MAX_ARGS)] = []
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


class ExecutionList(BaseModel):
    executions: list[ExecutionView]


class SessionCreate(_Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "policy": "default",
                    "language": "python",
                    "idle_timeout_s": 600,
                    "max_lifetime_s": 3600,
                }
            ]
        },
    )

    policy: Annotated[str | None, Field(max_length=64)] = None
    language: Annotated[str, Field(min_length=1, max_length=64)] = "python"
    idle_timeout_s: Annotated[int | None, Field(gt=0)] = None
    max_lifetime_s: Annotated[int | None, Field(gt=0)] = None


class SessionList(BaseModel):
    sessions: list[SessionView]


class WorkspaceFileView(BaseModel):
    path: Annotated[str, Field(examples=["a/b.txt"])]
    size_bytes: Annotated[int, Field(examples=[3])]


class FileList(BaseModel):
    files: list[WorkspaceFileView]
    truncated: bool = False  # more files exist than one listing returns (max_listed_files)


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


class ErrorDetail(BaseModel):
    code: Annotated[str, Field(examples=["validation_error"])]
    message: Annotated[str, Field(examples=["Field required"])]
    field: Annotated[str | None, Field(examples=["language"])] = None


class ErrorBody(BaseModel):
    """The one shape of every error response."""

    error: ErrorDetail


class Health(BaseModel):
    status: Annotated[str, Field(examples=["ok"])]


class Readiness(BaseModel):
    redis: bool
    persistence: bool  # AOF on and no eviction of keys without a TTL
    worker: bool  # a worker's heartbeat is fresh
    images: bool
    draining: bool  # this API process is shutting down
