"""The ModelClient protocol and the model-facing message types it speaks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from agent_client.cancellation import CancellationToken
from agent_client.messages import FunctionCall, FunctionExecutionResult, RequestUsage


class SystemMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system"] = "system"
    content: str


class UserMessage(BaseModel):
    """A turn from anyone but the model itself; its text already says who spoke."""

    model_config = ConfigDict(frozen=True)

    role: Literal["user"] = "user"
    content: str
    source: str = "user"


class AssistantMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["assistant"] = "assistant"
    content: str = ""
    tool_calls: list[FunctionCall] = Field(default_factory=list)
    source: str = "assistant"


class ToolResultMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["tool"] = "tool"
    results: list[FunctionExecutionResult]


LLMMessage = SystemMessage | UserMessage | AssistantMessage | ToolResultMessage

# "auto" lets the model choose, "required" forces some tool, a tool's name forces that tool.
ToolChoice = Literal["auto", "none", "required"] | str


class ToolSchema(BaseModel):
    """What the model is told about one tool (OpenAI function-calling shape)."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "unknown"]


class CreateResult(BaseModel):
    """One model answer: text, tool calls (possibly recovered from the text), usage."""

    model_config = ConfigDict(frozen=True)

    content: str = ""
    tool_calls: list[FunctionCall] = Field(default_factory=list)
    usage: RequestUsage = Field(default_factory=RequestUsage)
    finish_reason: FinishReason = "stop"


class ModelClient(Protocol):
    """A chat-completion model; agents only ever call ``create``."""

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[ToolSchema] = (),
        tool_choice: ToolChoice = "auto",
        cancellation: CancellationToken | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> CreateResult:
        """One answer; ``max_tokens`` caps its length (None: the client's or server's default).

        ``temperature`` and ``seed`` override the client's sampling for this call only: a team
        that draws several candidates for one task samples each with its own seed, so the
        candidates differ from one another yet a rerun draws the same ones.

        A reply cut at the cap comes back with ``finish_reason == "length"``, never as an error.
        """
        ...
