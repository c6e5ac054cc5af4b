"""The typed async client of the execution service's v1 HTTP API."""

from agent_client.service.client import ExecutionClient
from agent_client.service.models import (
    Destination,
    EgressEvent,
    EgressRecord,
    Execution,
    ExecutionCreate,
    ExecutionEvent,
    InputFile,
    LimitsOverride,
    NetworkOverride,
    OutputEvent,
    ResultEvent,
    RunResult,
    Session,
    StateEvent,
)

__all__ = [
    "Destination",
    "EgressEvent",
    "EgressRecord",
    "Execution",
    "ExecutionClient",
    "ExecutionCreate",
    "ExecutionEvent",
    "InputFile",
    "LimitsOverride",
    "NetworkOverride",
    "OutputEvent",
    "ResultEvent",
    "RunResult",
    "Session",
    "StateEvent",
]
