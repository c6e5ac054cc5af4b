"""OpenAIModelClient: any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import openai

from agent_client.cancellation import CancellationToken
from agent_client.errors import ModelError
from agent_client.messages import FunctionCall, RequestUsage
from agent_client.models.base import (
    AssistantMessage,
    CreateResult,
    FinishReason,
    LLMMessage,
    SystemMessage,
    ToolChoice,
    ToolSchema,
    UserMessage,
)
from agent_client.models.tool_call_text import parse_tool_calls

logger = logging.getLogger(__name__)

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


# A small model on CPU answers in seconds to minutes; 60 s (openai's usual) cut off 9 of 58 calls.
DEFAULT_TIMEOUT_S = 600.0


class OpenAIModelClient:
    """A ModelClient on ``openai.AsyncOpenAI``.

    Args:
        model: the model name the endpoint expects.
        base_url: the endpoint's ``/v1`` root.
        api_key: the key (local servers accept any string).
        timeout_s: per-request timeout; the default suits a small model on a CPU, where one
            answer can take minutes (measured: up to 298 s on 2 cores).
        max_tokens: default cap on each answer's length (None: the server's, which for a local
            server may be "until the context is full"); ``create(max_tokens=...)`` overrides it.
        max_retries: retries on connection errors, 408/409/429 and 5xx (the openai client's own
            back-off, which honours Retry-After).
        temperature: None leaves the server's default.
        parse_tool_calls_from_text: recover calls a server left in the text (``<tool_call>`` or
            fenced JSON) when tools were offered but none came back in ``tool_calls``.
        extra_body: extra request fields for the endpoint (e.g. ``{"top_k": 1}``).

    The caller passes every setting; ``openai`` may still read ``OPENAI_ORG_ID`` and
    ``OPENAI_PROJECT_ID`` when ``organization``/``project`` are None, so pass them if that matters.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = 2,
        max_tokens: int | None = None,
        temperature: float | None = None,
        parse_tool_calls_from_text: bool = True,
        extra_body: dict[str, Any] | None = None,
        organization: str | None = None,
        project: str | None = None,
    ) -> None:
        self._model = model
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._parse_text_calls = parse_tool_calls_from_text
        self._extra_body = dict(extra_body or {})
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout_s,
            max_retries=max_retries,
            organization=organization,
            project=project,
        )

    @property
    def model(self) -> str:
        return self._model

    async def close(self) -> None:
        await self._client.close()

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
        """One chat completion (``temperature`` and ``seed`` override the client's for this call).

        Raises:
            ModelError: the endpoint failed after its retries, or answered without a choice.
        """
        request: dict[str, Any] = {
            "model": self._model,
            "messages": wire_messages(messages),
        }
        heat = temperature if temperature is not None else self._temperature
        if heat is not None:
            request["temperature"] = heat
        if seed is not None:
            request["seed"] = seed
        cap = max_tokens if max_tokens is not None else self._max_tokens
        if cap is not None:
            request["max_tokens"] = cap
        if tools:
            request["tools"] = [_wire_tool(t) for t in tools]
            request["tool_choice"] = _wire_tool_choice(tool_choice)
        if self._extra_body:
            request["extra_body"] = self._extra_body
        call = asyncio.ensure_future(self._complete(request))
        if cancellation is not None:
            cancellation.link(call)
        completion = await call
        return self._result(completion, [t.name for t in tools])

    async def _complete(self, request: dict[str, Any]) -> Any:
        try:
            return await self._client.chat.completions.create(**request)
        except openai.APIStatusError as exc:
            raise ModelError(
                f"model endpoint answered {exc.status_code}: {exc.message}",
                status_code=exc.status_code,
            ) from exc
        except openai.APIError as exc:  # connection failures and timeouts, after retries
            raise ModelError(f"model endpoint failed: {exc}") from exc

    def _result(self, completion: Any, tool_names: list[str]) -> CreateResult:
        if not completion.choices:
            raise ModelError("model endpoint answered without a choice")
        choice = completion.choices[0]
        message = choice.message
        content = message.content or ""
        calls = [
            FunctionCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "{}")
            for c in (message.tool_calls or [])
            if getattr(c, "function", None) is not None
        ]
        finish = _FINISH_REASONS.get(str(choice.finish_reason), "unknown")
        if not calls and tool_names and self._parse_text_calls:
            calls = parse_tool_calls(content, tool_names)
            if calls:
                logger.debug("recovered %d tool call(s) from the text", len(calls))
                finish = "tool_calls"
        usage = RequestUsage()
        if completion.usage is not None:
            usage = RequestUsage(
                prompt_tokens=completion.usage.prompt_tokens or 0,
                completion_tokens=completion.usage.completion_tokens or 0,
            )
        return CreateResult(content=content, tool_calls=calls, usage=usage, finish_reason=finish)


def _wire_message(message: LLMMessage) -> dict[str, Any] | list[dict[str, Any]]:
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": message.content}
    if isinstance(message, UserMessage):
        return {"role": "user", "content": message.content}
    if isinstance(message, AssistantMessage):
        wire: dict[str, Any] = {"role": "assistant", "content": message.content}
        if message.tool_calls:
            # llama.cpp rejects null content next to tool calls: always send a string.
            wire["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in message.tool_calls
            ]
        return wire
    return [
        {"role": "tool", "tool_call_id": r.call_id, "content": r.content} for r in message.results
    ]


def _wire_tool(tool: ToolSchema) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def _wire_tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def wire_messages(messages: Sequence[LLMMessage]) -> list[dict[str, Any]]:
    """The request ``messages`` list as sent (tool results expand to one message per call)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        wire = _wire_message(message)
        out.extend(wire if isinstance(wire, list) else [wire])
    return out
