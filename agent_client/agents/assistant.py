"""AssistantAgent: a model with tools and handoffs, answering in one message per turn."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent_client.agents.base import BaseChatAgent, Response
from agent_client.agents.context import model_messages
from agent_client.cancellation import CancellationToken
from agent_client.errors import ModelError
from agent_client.messages import (
    CHAT_MESSAGES,
    AnyMessage,
    ChatMessage,
    FunctionCall,
    FunctionExecutionResult,
    HandoffMessage,
    RequestUsage,
    TextMessage,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
    ToolCallSummaryMessage,
)
from agent_client.models.base import (
    AssistantMessage,
    CreateResult,
    LLMMessage,
    ModelClient,
    ToolChoice,
    ToolResultMessage,
    ToolSchema,
    UserMessage,
)
from agent_client.tools import FunctionTool

logger = logging.getLogger(__name__)

DEFAULT_SYSTEM_MESSAGE = "You are a helpful assistant. Answer the task; be concise."
CONTINUE_PROMPT = (
    "Your reply was cut off by the length limit. Continue exactly where it stopped, without "
    "repeating anything already written."
)
# Metadata a turn's message carries so teams and conditions can react without parsing text.
FAILED_TURN = "failed"  # metadata["turn"]: the model call failed (timeout, endpoint error)
TRUNCATED = "truncated"  # metadata["reply"]: still cut off at max_tokens after continuing
REPAIRED = "repaired"  # metadata["reply"]: failed its check twice; the repair was applied

ReplyCheck = Callable[[str], "str | None"]
"""What is wrong with a reply, as the instruction to re-ask with; None when it is acceptable."""


@dataclass(frozen=True)
class Handoff:
    """Lets the agent pass the conversation to ``target`` by calling ``transfer_to_<target>``."""

    target: str
    description: str = ""
    message: str = ""

    @property
    def tool_name(self) -> str:
        return f"transfer_to_{self.target}"

    @property
    def schema(self) -> ToolSchema:
        return ToolSchema(
            name=self.tool_name,
            description=self.description or f"Hand the conversation over to {self.target}.",
        )


class AssistantAgent(BaseChatAgent):
    """An agent backed by a ModelClient.

    Args:
        name: the agent's name (also its ``[name]:`` label to others).
        model_client: the model.
        tools: FunctionTools or plain typed functions.
        handoffs: targets (names or ``Handoff``) offered as ``transfer_to_<name>`` tools.
        description: what the agent does (selector teams show it to the selecting model).
        system_message: the instructions; None sends none.
        reflect_on_tool_use: after tools ran, ask the model once more (without tools) for an
            answer in words; otherwise answer with a summary of the tool results.
        max_tool_iterations: model calls that may request tools in one turn.
        tool_choice: choice for the first call of a turn; force a tool's name for servers that
            only return tool calls when forced (llama.cpp).
        max_context_messages: keep the model's view short (task always kept; 0: the task
            alone, so every turn answers it afresh).
        label_speakers: prefix others' turns with ``[name]:`` (chat templates drop names).
        tool_call_summary_format: how each result reads in a summary (``{tool_name}``,
            ``{arguments}``, ``{result}``).
        max_tokens: cap on each answer (None: the model client's default).
        max_continuations: when an answer stops at ``max_tokens`` (finish_reason "length"),
            ask the model this many times to continue it and join the parts; a reply still cut
            off carries ``metadata["reply"] == "truncated"``.
        on_model_error: "message" ends the turn with a message carrying
            ``metadata["turn"] == "failed"`` (the team goes on and can retry, skip or stop);
            "raise" lets the ModelError end the run.
        reply_check: a text answer it finds wrong is re-asked once with its instruction.
        reply_repair: applied to an answer that fails ``reply_check`` twice (None keeps it).
        hidden_sources: agents whose messages this one never sees (a coder kept apart from
            the tests it will be judged by).
        temperature: sampling temperature of its calls (None: the model client's).
        seed: with a seed, its first turn samples with ``seed``, the next with ``seed + 1``
            and so on: successive turns differ (several candidates for one task) and a rerun
            repeats them.
    """

    def __init__(
        self,
        name: str,
        model_client: ModelClient,
        *,
        tools: Sequence[FunctionTool | Callable[..., Any]] = (),
        handoffs: Sequence[str | Handoff] = (),
        description: str = "An agent that answers with a model.",
        system_message: str | None = DEFAULT_SYSTEM_MESSAGE,
        reflect_on_tool_use: bool = False,
        max_tool_iterations: int = 1,
        tool_choice: ToolChoice = "auto",
        max_context_messages: int | None = None,
        label_speakers: bool = True,
        tool_call_summary_format: str = "{result}",
        max_tokens: int | None = None,
        max_continuations: int = 1,
        on_model_error: Literal["message", "raise"] = "message",
        reply_check: ReplyCheck | None = None,
        reply_repair: Callable[[str], str] | None = None,
        hidden_sources: Sequence[str] = (),
        temperature: float | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(name, description)
        if max_tool_iterations < 1:
            raise ValueError("max_tool_iterations must be at least 1")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if max_continuations < 0:
            raise ValueError("max_continuations must be 0 or more")
        if max_context_messages is not None and max_context_messages < 0:
            raise ValueError("max_context_messages must be 0 or more")
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._seed = seed
        self._turns = 0
        self._max_continuations = max_continuations
        self._on_model_error = on_model_error
        self._reply_check = reply_check
        self._reply_repair = reply_repair
        self._hidden = frozenset(hidden_sources)
        self._model = model_client
        self._tools = {
            t.name: t
            for t in (
                tool if isinstance(tool, FunctionTool) else FunctionTool(tool) for tool in tools
            )
        }
        self._handoffs = {
            h.tool_name: h
            for h in (x if isinstance(x, Handoff) else Handoff(target=x) for x in handoffs)
        }
        clash = set(self._tools) & set(self._handoffs)
        if clash:
            raise ValueError(f"tool names clash with handoffs: {sorted(clash)}")
        self._system_message = system_message
        self._reflect = reflect_on_tool_use
        self._max_tool_iterations = max_tool_iterations
        self._tool_choice = tool_choice
        self._max_context = max_context_messages
        self._label = label_speakers
        self._summary_format = tool_call_summary_format
        self._thread: list[ChatMessage] = []

    @property
    def handoff_targets(self) -> list[str]:
        return [h.target for h in self._handoffs.values()]

    async def on_messages_stream(
        self, messages: Sequence[ChatMessage], cancellation: CancellationToken | None = None
    ) -> AsyncIterator[AnyMessage | Response]:
        self._thread.extend(m for m in messages if m.source not in self._hidden)
        self._turns += 1
        inner: list[AnyMessage] = []
        try:
            async for item in self._turn(inner, cancellation):
                yield item
        except ModelError as exc:
            if self._on_model_error == "raise":
                raise
            logger.warning("%s: model call failed, turn ended: %s", self.name, exc)
            yield self._finish(
                TextMessage(
                    source=self.name,
                    content=f"({self.name} could not answer: {exc})",
                    metadata={"turn": FAILED_TURN, "error": str(exc)},
                ),
                inner,
            )

    @property
    def _sampling(self) -> dict[str, Any]:
        """This turn's ``create`` options: the length cap, and the temperature and seed."""
        return {
            "max_tokens": self._max_tokens,
            "temperature": self._temperature,
            "seed": None if self._seed is None else self._seed + self._turns - 1,
        }

    async def _turn(
        self, inner: list[AnyMessage], cancellation: CancellationToken | None
    ) -> AsyncIterator[AnyMessage | Response]:
        context: list[LLMMessage] = model_messages(
            self._thread,
            own_name=self.name,
            system_message=self._system_message,
            max_messages=self._max_context,
            label_speakers=self._label,
        )
        schemas = [t.schema for t in self._tools.values()] + [
            h.schema for h in self._handoffs.values()
        ]
        calls: list[FunctionCall] = []
        results: list[FunctionExecutionResult] = []
        for iteration in range(self._max_tool_iterations):
            choice: ToolChoice = self._tool_choice if iteration == 0 else "auto"
            answer = await self._model.create(
                context,
                tools=schemas,
                tool_choice=choice if schemas else "auto",
                cancellation=cancellation,
                **self._sampling,
            )
            if not answer.tool_calls:
                text, usage, metadata = await self._text_answer(context, answer, cancellation)
                yield self._finish(
                    TextMessage(
                        source=self.name, content=text, models_usage=usage, metadata=metadata
                    ),
                    inner,
                )
                return
            calls = list(answer.tool_calls)
            request = ToolCallRequestEvent(
                source=self.name, content=calls, models_usage=answer.usage
            )
            inner.append(request)
            yield request
            results = await self._run_calls(calls)
            executed = ToolCallExecutionEvent(source=self.name, content=results)
            inner.append(executed)
            yield executed
            handoff = next(
                (self._handoffs[c.name] for c in calls if c.name in self._handoffs), None
            )
            if handoff is not None:
                text = (
                    answer.content.strip() or handoff.message or f"Transferred to {handoff.target}."
                )
                yield self._finish(
                    HandoffMessage(source=self.name, content=text, target=handoff.target), inner
                )
                return
            context += [
                AssistantMessage(content=answer.content, tool_calls=calls, source=self.name),
                ToolResultMessage(results=results),
            ]
        if self._reflect:
            answer = await self._model.create(context, cancellation=cancellation, **self._sampling)
            message: ChatMessage = TextMessage(
                source=self.name, content=answer.content, models_usage=answer.usage
            )
        else:
            message = ToolCallSummaryMessage(
                source=self.name,
                content=self._summary(calls, results),
                tool_calls=calls,
                results=results,
            )
        yield self._finish(message, inner)

    async def _text_answer(
        self,
        context: list[LLMMessage],
        answer: CreateResult,
        cancellation: CancellationToken | None,
    ) -> tuple[str, RequestUsage, dict[str, str]]:
        """The answer completed past the length limit and checked; its usage covers every call."""
        text, usage, truncated = await self._complete(context, answer, cancellation)
        metadata: dict[str, str] = {}
        check = self._reply_check
        problem = check(text) if check is not None else None
        if check is not None and problem is not None:
            retry = [
                *context,
                AssistantMessage(content=text, source=self.name),
                UserMessage(content=problem),
            ]
            first = await self._model.create(retry, cancellation=cancellation, **self._sampling)
            second, more, truncated = await self._complete(retry, first, cancellation)
            usage += more
            if check(second) is None:
                text = second
            elif self._reply_repair is not None:
                text = self._reply_repair(second)
                metadata["reply"] = REPAIRED
            else:
                text = second
        if truncated and "reply" not in metadata:
            metadata["reply"] = TRUNCATED
        return text, usage, metadata

    async def _complete(
        self,
        context: list[LLMMessage],
        answer: CreateResult,
        cancellation: CancellationToken | None,
    ) -> tuple[str, RequestUsage, bool]:
        """Join continuations of an answer cut off at ``max_tokens``; True if still cut off."""
        text, usage = answer.content, answer.usage
        finish = answer.finish_reason
        for _ in range(self._max_continuations):
            if finish != "length":
                break
            more = await self._model.create(
                [
                    *context,
                    AssistantMessage(content=text, source=self.name),
                    UserMessage(content=CONTINUE_PROMPT),
                ],
                cancellation=cancellation,
                **self._sampling,
            )
            # Small models often start over instead of continuing: then the new text replaces.
            restart = more.content.lstrip()[:40] == text.lstrip()[:40]
            text = more.content if restart else text + more.content
            usage, finish = usage + more.usage, more.finish_reason
        return text, usage, finish == "length"

    def _finish(self, message: ChatMessage, inner: list[AnyMessage]) -> Response:
        self._thread.append(message)
        return Response(chat_message=message, inner_messages=tuple(inner))

    async def _run_calls(self, calls: Sequence[FunctionCall]) -> list[FunctionExecutionResult]:
        async def run(call: FunctionCall) -> FunctionExecutionResult:
            if call.name in self._handoffs:
                target = self._handoffs[call.name].target
                return FunctionExecutionResult(
                    call_id=call.id, name=call.name, content=f"Transferred to {target}."
                )
            tool = self._tools.get(call.name)
            if tool is None:
                known = ", ".join(sorted([*self._tools, *self._handoffs])) or "none"
                return FunctionExecutionResult(
                    call_id=call.id,
                    name=call.name,
                    content=f"Error: no tool named {call.name!r}; available: {known}",
                    is_error=True,
                )
            return await tool.run(call)

        return list(await asyncio.gather(*(run(c) for c in calls)))

    def _summary(
        self, calls: Sequence[FunctionCall], results: Sequence[FunctionExecutionResult]
    ) -> str:
        arguments = {c.id: c.arguments for c in calls}
        return "\n".join(
            self._summary_format.format(
                tool_name=r.name, arguments=arguments.get(r.call_id, ""), result=r.content
            )
            for r in results
        )

    async def on_reset(self, cancellation: CancellationToken | None = None) -> None:
        self._thread.clear()
        self._turns = 0

    async def save_state(self) -> dict[str, Any]:
        return {
            "thread": CHAT_MESSAGES.dump_python(self._thread, mode="json"),
            "turns": self._turns,
        }

    async def load_state(self, state: Mapping[str, Any]) -> None:
        self._thread = CHAT_MESSAGES.validate_python(state.get("thread", []))
        self._turns = int(state.get("turns", 0))
