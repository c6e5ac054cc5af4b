"""Typed, tagged messages of a conversation; ``type`` tells them apart on the wire and in state.

Chat messages (in the thread every agent reads) and events (observable, for consoles and
termination conditions, never fed to other agents) are two unions. ``CodeExecutionEvent`` keeps
AutoGen's name but is a chat message here: the reviewer must read the real result of a run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class RequestUsage(BaseModel):
    """Tokens one model call used."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: RequestUsage) -> RequestUsage:
        return RequestUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class FunctionCall(BaseModel):
    """A tool call the model asked for; ``arguments`` is the JSON text it wrote."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: str


class FunctionExecutionResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    call_id: str
    name: str
    content: str
    is_error: bool = False


class CodeBlock(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    language: str


def _now() -> datetime:
    return datetime.now(UTC)


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    models_usage: RequestUsage | None = None
    created_at: datetime = Field(default_factory=_now)
    # "role": "task" marks messages that carried the caller's task, which conditions treat apart.
    metadata: dict[str, str] = Field(default_factory=dict)

    @property
    def is_task(self) -> bool:
        return self.metadata.get("role") == "task"

    def to_text(self) -> str:
        """How this message reads to a model or a log."""
        raise NotImplementedError


class TextMessage(_Message):
    type: Literal["TextMessage"] = "TextMessage"
    content: str

    def to_text(self) -> str:
        return self.content


class StopMessage(_Message):
    type: Literal["StopMessage"] = "StopMessage"
    content: str

    def to_text(self) -> str:
        return self.content


class HandoffMessage(_Message):
    """An agent passes the conversation to ``target`` (a Swarm lets the target speak next)."""

    type: Literal["HandoffMessage"] = "HandoffMessage"
    content: str
    target: str

    def to_text(self) -> str:
        return self.content


class ToolCallSummaryMessage(_Message):
    """The answer of an agent that ran tools without reflecting on their results."""

    type: Literal["ToolCallSummaryMessage"] = "ToolCallSummaryMessage"
    content: str
    tool_calls: list[FunctionCall] = Field(default_factory=list)
    results: list[FunctionExecutionResult] = Field(default_factory=list)

    def to_text(self) -> str:
        return self.content


class CodeExecutionEvent(_Message):
    """The real outcome of running code blocks: exit code and output, read by every agent."""

    type: Literal["CodeExecutionEvent"] = "CodeExecutionEvent"
    exit_code: int
    output: str
    code_blocks: list[CodeBlock] = Field(default_factory=list)
    note: str = ""

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0

    def to_text(self) -> str:
        verdict = "succeeded" if self.succeeded else "FAILED"
        text = f"Execution {verdict} with exit code {self.exit_code}.\nOutput:\n{self.output}"
        if not self.output.strip():
            text = f"Execution {verdict} with exit code {self.exit_code}; it printed nothing."
        return f"{self.note}\n{text}" if self.note else text


class ToolCallRequestEvent(_Message):
    type: Literal["ToolCallRequestEvent"] = "ToolCallRequestEvent"
    content: list[FunctionCall]

    def to_text(self) -> str:
        return "; ".join(f"{c.name}({c.arguments})" for c in self.content)


class ToolCallExecutionEvent(_Message):
    type: Literal["ToolCallExecutionEvent"] = "ToolCallExecutionEvent"
    content: list[FunctionExecutionResult]

    def to_text(self) -> str:
        return "; ".join(f"{r.name} -> {r.content}" for r in self.content)


class CodeGenerationEvent(_Message):
    """Code blocks an executor agent found and is about to run, with who wrote them."""

    type: Literal["CodeGenerationEvent"] = "CodeGenerationEvent"
    code_blocks: list[CodeBlock]
    author: str

    def to_text(self) -> str:
        return "\n\n".join(f"```{b.language}\n{b.code}\n```" for b in self.code_blocks)


class SelectSpeakerEvent(_Message):
    """Which participant a team chose to speak next, and whether it fell back to order."""

    type: Literal["SelectSpeakerEvent"] = "SelectSpeakerEvent"
    content: str
    fallback: bool = False

    def to_text(self) -> str:
        return self.content


ChatMessage = Annotated[
    TextMessage | StopMessage | HandoffMessage | ToolCallSummaryMessage | CodeExecutionEvent,
    Field(discriminator="type"),
]
AgentEvent = Annotated[
    ToolCallRequestEvent | ToolCallExecutionEvent | CodeGenerationEvent | SelectSpeakerEvent,
    Field(discriminator="type"),
]
AnyMessage = Annotated[
    TextMessage
    | StopMessage
    | HandoffMessage
    | ToolCallSummaryMessage
    | CodeExecutionEvent
    | ToolCallRequestEvent
    | ToolCallExecutionEvent
    | CodeGenerationEvent
    | SelectSpeakerEvent,
    Field(discriminator="type"),
]
CHAT_MESSAGE_TYPES = (
    TextMessage,
    StopMessage,
    HandoffMessage,
    ToolCallSummaryMessage,
    CodeExecutionEvent,
)

CHAT_MESSAGES: TypeAdapter[list[ChatMessage]] = TypeAdapter(list[ChatMessage])
ANY_MESSAGES: TypeAdapter[list[AnyMessage]] = TypeAdapter(list[AnyMessage])


class TaskResult(BaseModel):
    """Everything a run produced, in order, and why it stopped."""

    model_config = ConfigDict(frozen=True)

    messages: list[AnyMessage]
    stop_reason: str | None = None
