"""ScriptedModelClient: canned answers in order, and a record of what each call was shown."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from agent_client.cancellation import CancellationToken
from agent_client.errors import ModelError
from agent_client.messages import FunctionCall, RequestUsage
from agent_client.models.base import CreateResult, LLMMessage, ToolChoice, ToolSchema

# An exception instance is raised by that call (a timeout, an endpoint error), for tests of
# how agents survive a failed turn.
ScriptItem = (
    str | CreateResult | ModelError | Callable[[Sequence[LLMMessage]], "str | CreateResult"]
)


def tool_call(name: str, arguments: dict[str, Any] | None = None) -> CreateResult:
    """A scripted answer that calls one tool."""
    call = FunctionCall(
        id=f"call_{uuid.uuid4().hex[:8]}", name=name, arguments=json.dumps(arguments or {})
    )
    return CreateResult(tool_calls=[call], finish_reason="tool_calls")


class ScriptedModelClient:
    """Plays a script of answers for tests and docs; running out is a ModelError, not a hang.

    Each item is the answer's text, a full ``CreateResult``, a ``ModelError`` to raise, or a
    function of the messages the model was shown. ``calls`` records what each call received,
    so tests can check prompts.
    """

    def __init__(
        self,
        script: Sequence[ScriptItem],
        *,
        usage: RequestUsage | None = None,
        repeat_last: bool = False,
    ) -> None:
        self._script = list(script)
        self._usage = usage or RequestUsage(prompt_tokens=10, completion_tokens=5)
        self._repeat_last = repeat_last
        self._index = 0
        self.calls: list[dict[str, Any]] = []

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
        self.calls.append(
            {
                "messages": list(messages),
                "tools": list(tools),
                "tool_choice": tool_choice,
                "max_tokens": max_tokens,
                "temperature": temperature,
                "seed": seed,
            }
        )
        if self._index >= len(self._script):
            if not (self._repeat_last and self._script):
                raise ModelError(f"script exhausted after {len(self._script)} answer(s)")
            item = self._script[-1]
        else:
            item = self._script[self._index]
        self._index += 1
        if isinstance(item, BaseException):
            raise item
        if callable(item):
            item = item(messages)
        if isinstance(item, str):
            return CreateResult(content=item, usage=self._usage)
        if item.usage == RequestUsage():
            return item.model_copy(update={"usage": self._usage})
        return item
