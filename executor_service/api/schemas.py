"""The names of the v1 wire contract in one place; each is defined, with its mappers, in
`api/wire/` (one module per resource). Import from here or from the module that defines it."""

from __future__ import annotations

from executor_service.api.wire.catalogue import (
    MountView,
    PolicyList,
    PolicyView,
    RuntimeList,
    RuntimeView,
)
from executor_service.api.wire.errors import ErrorBody, ErrorDetail
from executor_service.api.wire.events import OutputEvent, StateEvent
from executor_service.api.wire.execution_requests import (
    MAX_ARGS,
    MAX_COLLECT,
    Destination,
    ExecutionBatch,
    ExecutionCreate,
    InputFile,
    LimitsOverride,
    NetworkOverride,
)
from executor_service.api.wire.executions import (
    EgressRecord,
    ExecutionError,
    ExecutionList,
    ExecutionState,
    ExecutionView,
    OutputFile,
    RunResult,
    RunStatus,
)
from executor_service.api.wire.health import Health, Readiness
from executor_service.api.wire.sessions import (
    FileList,
    SessionCreate,
    SessionList,
    SessionState,
    SessionView,
    WorkspaceFileView,
)

__all__ = [
    "MAX_ARGS",
    "MAX_COLLECT",
    "Destination",
    "EgressRecord",
    "ErrorBody",
    "ErrorDetail",
    "ExecutionBatch",
    "ExecutionCreate",
    "ExecutionError",
    "ExecutionList",
    "ExecutionState",
    "ExecutionView",
    "FileList",
    "Health",
    "InputFile",
    "LimitsOverride",
    "MountView",
    "NetworkOverride",
    "OutputEvent",
    "OutputFile",
    "PolicyList",
    "PolicyView",
    "Readiness",
    "RunResult",
    "RunStatus",
    "RuntimeList",
    "RuntimeView",
    "SessionCreate",
    "SessionList",
    "SessionState",
    "SessionView",
    "StateEvent",
    "WorkspaceFileView",
]
