"""The typed async client of the execution service's v1 HTTP API."""

from agent_client.service.client import ExecutionClient
from agent_client.service.models import (
    Execution,
    ExecutionEvent,
    ExecutionRequest,
    InputFile,
    OutputEvent,
    ResultEvent,
    RunResult,
    Session,
    StateEvent,
)

__all__ = [
    "Execution",
    "ExecutionClient",
    "ExecutionEvent",
    "ExecutionRequest",
    "InputFile",
    "OutputEvent",
    "ResultEvent",
    "RunResult",
    "Session",
    "StateEvent",
]
