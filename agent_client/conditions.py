"""Termination conditions: called with each new batch of messages, composable with ``|`` and ``&``.

A condition that fires returns a StopMessage whose content is the readable stop reason; teams
reset their condition after every run so the next run starts clean.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence

from agent_client.errors import SpecError
from agent_client.messages import (
    CHAT_MESSAGE_TYPES,
    AnyMessage,
    HandoffMessage,
    RequestUsage,
    StopMessage,
    TextMessage,
    ToolCallSummaryMessage,
)
from agent_client.spec import (
    AllOfCondition,
    AnyOfCondition,
    ConditionSpec,
    HandoffCondition,
    MaxMessagesCondition,
    TextMentionCondition,
    TimeoutCondition,
    TokenUsageCondition,
)

_SOURCE = "termination"


class TerminationCondition(ABC):
    """Decides, message batch by batch, when a team run stops."""

    @property
    @abstractmethod
    def terminated(self) -> bool: ...

    @abstractmethod
    async def __call__(self, messages: Sequence[AnyMessage]) -> StopMessage | None:
        """Look at new messages; return a StopMessage once the run should stop."""

    @abstractmethod
    async def reset(self) -> None: ...

    def __or__(self, other: TerminationCondition) -> TerminationCondition:
        return OrTermination(self, other)

    def to_spec(self) -> ConditionSpec:
        """This condition as it reads in a team spec, so a built team can be written back.

        Raises:
            SpecError: the condition has no spec form (it needs a live object, such as
                ExternalTermination's button).
        """
        raise SpecError(f"{type(self).__name__} cannot be written in a team spec")

    def __and__(self, other: TerminationCondition) -> TerminationCondition:
        return AndTermination(self, other)


class _Latching(TerminationCondition):
    """Stays terminated after firing until reset (the common case)."""

    def __init__(self) -> None:
        self._stop: StopMessage | None = None

    @property
    def terminated(self) -> bool:
        return self._stop is not None

    def _fire(self, reason: str) -> StopMessage:
        self._stop = StopMessage(source=_SOURCE, content=reason)
        return self._stop

    async def reset(self) -> None:
        self._stop = None


class MaxMessageTermination(_Latching):
    """Stops after ``max_messages`` chat messages (the task counts; events do not by default)."""

    def __init__(self, max_messages: int, *, include_events: bool = False) -> None:
        super().__init__()
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self._max = max_messages
        self._include_events = include_events
        self._count = 0

    async def __call__(self, messages: Sequence[AnyMessage]) -> StopMessage | None:
        if self._stop is not None:
            return self._stop
        self._count += sum(
            1 for m in messages if self._include_events or isinstance(m, CHAT_MESSAGE_TYPES)
        )
        if self._count >= self._max:
            return self._fire(f"Maximum number of messages {self._max} reached.")
        return None

    async def reset(self) -> None:
        await super().reset()
        self._count = 0

    def to_spec(self) -> ConditionSpec:
        if self._include_events:
            return super().to_spec()  # counting events has no spec form
        return MaxMessagesCondition(type="max_messages", max_messages=self._max)


class TextMentionTermination(_Latching):
    """Stops when an agent's message mentions ``text``.

    The task never triggers it: task messages are skipped, and the task's own text is cut out
    of later messages first, so an agent echoing "...reply TERMINATE when done" does not stop
    the run.
    """

    def __init__(self, text: str, *, sources: Collection[str] | None = None) -> None:
        super().__init__()
        if not text:
            raise ValueError("text must not be empty")
        self._text = text
        self._sources = set(sources) if sources is not None else None
        self._task_texts: list[str] = []

    async def __call__(self, messages: Sequence[AnyMessage]) -> StopMessage | None:
        if self._stop is not None:
            return self._stop
        for message in messages:
            if message.is_task:
                self._task_texts.append(message.to_text())
                continue
            if self._sources is not None and message.source not in self._sources:
                continue
            if not isinstance(message, TextMessage | ToolCallSummaryMessage | HandoffMessage):
                continue
            content = message.to_text()
            for task in self._task_texts:
                content = content.replace(task, "")
            if self._text in content:
                return self._fire(f"Text '{self._text}' mentioned by {message.source}.")
        return None

    async def reset(self) -> None:
        await super().reset()
        self._task_texts.clear()

    def to_spec(self) -> ConditionSpec:
        sources = sorted(self._sources) if self._sources is not None else None
        return TextMentionCondition(type="text_mention", text=self._text, sources=sources)


class HandoffTermination(_Latching):
    """Stops when an agent hands off to ``target`` (often a human outside the team)."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self._target = target

    async def __call__(self, messages: Sequence[AnyMessage]) -> StopMessage | None:
        if self._stop is not None:
            return self._stop
        for message in messages:
            if isinstance(message, HandoffMessage) and message.target == self._target:
                return self._fire(f"Handoff to {self._target} from {message.source} detected.")
        return None

    def to_spec(self) -> ConditionSpec:
        return HandoffCondition(type="handoff", target=self._target)


class TimeoutTermination(_Latching):
    """Stops at the first check after ``timeout_s`` since the first check of the run."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._timeout_s = timeout_s
        self._started: float | None = None

    async def __call__(self, messages: Sequence[AnyMessage]) -> StopMessage | None:
        if self._stop is not None:
            return self._stop
        now = time.monotonic()
        if self._started is None:
            self._started = now
        if now - self._started >= self._timeout_s:
            return self._fire(f"Timeout of {self._timeout_s:g} seconds reached.")
        return None

    async def reset(self) -> None:
        await super().reset()
        self._started = None

    def to_spec(self) -> ConditionSpec:
        return TimeoutCondition(type="timeout", timeout_s=self._timeout_s)


class TokenUsageTermination(_Latching):
    """Stops once the models' reported tokens reach any of the given limits."""

    def __init__(
        self,
        max_total_token: int | None = None,
        max_prompt_token: int | None = None,
        max_completion_token: int | None = None,
    ) -> None:
        super().__init__()
        if max_total_token is None and max_prompt_token is None and max_completion_token is None:
            raise ValueError("give at least one token limit")
        self._max_total = max_total_token
        self._max_prompt = max_prompt_token
        self._max_completion = max_completion_token
        self._usage = RequestUsage()

    async def __call__(self, messages: Sequence[AnyMessage]) -> StopMessage | None:
        if self._stop is not None:
            return self._stop
        for message in messages:
            if message.models_usage is not None:
                self._usage = self._usage + message.models_usage
        total = self._usage.prompt_tokens + self._usage.completion_tokens
        if self._max_total is not None and total >= self._max_total:
            return self._fire(f"Token usage limit reached: total {total} >= {self._max_total}.")
        if self._max_prompt is not None and self._usage.prompt_tokens >= self._max_prompt:
            return self._fire(f"Token usage limit reached: prompt >= {self._max_prompt}.")
        if (
            self._max_completion is not None
            and self._usage.completion_tokens >= self._max_completion
        ):
            return self._fire(f"Token usage limit reached: completion >= {self._max_completion}.")
        return None

    async def reset(self) -> None:
        await super().reset()
        self._usage = RequestUsage()

    def to_spec(self) -> ConditionSpec:
        return TokenUsageCondition(
            type="token_usage",
            max_total_tokens=self._max_total,
            max_prompt_tokens=self._max_prompt,
            max_completion_tokens=self._max_completion,
        )


class ExternalTermination(_Latching):
    """Stops at the next check after ``set()`` is called (e.g. from a UI's stop button)."""

    def __init__(self) -> None:
        super().__init__()
        self._set = False

    def set(self) -> None:
        self._set = True

    async def __call__(self, messages: Sequence[AnyMessage]) -> StopMessage | None:
        if self._stop is not None:
            return self._stop
        if self._set:
            return self._fire("External termination requested.")
        return None

    async def reset(self) -> None:
        await super().reset()
        self._set = False


class SourceMatchTermination(_Latching):
    """Stops once any of ``sources`` has sent a message."""

    def __init__(self, sources: Collection[str]) -> None:
        super().__init__()
        self._sources = set(sources)

    async def __call__(self, messages: Sequence[AnyMessage]) -> StopMessage | None:
        if self._stop is not None:
            return self._stop
        for message in messages:
            if message.source in self._sources and not message.is_task:
                return self._fire(f"'{message.source}' answered.")
        return None


class StopMessageTermination(_Latching):
    """Stops when an agent sends a StopMessage."""

    async def __call__(self, messages: Sequence[AnyMessage]) -> StopMessage | None:
        if self._stop is not None:
            return self._stop
        for message in messages:
            if isinstance(message, StopMessage):
                return self._fire(f"Stop message received from {message.source}.")
        return None


class OrTermination(TerminationCondition):
    """Stops when any part does."""

    def __init__(self, *conditions: TerminationCondition) -> None:
        self._conditions = conditions
        self._stop: StopMessage | None = None

    @property
    def terminated(self) -> bool:
        return self._stop is not None

    async def __call__(self, messages: Sequence[AnyMessage]) -> StopMessage | None:
        if self._stop is not None:
            return self._stop
        # Every part sees every batch, so counters stay right whichever fires first.
        stops = await asyncio.gather(*(c(messages) for c in self._conditions))
        fired = [s for s in stops if s is not None]
        if fired:
            self._stop = StopMessage(source=_SOURCE, content="; ".join(s.content for s in fired))
        return self._stop

    async def reset(self) -> None:
        self._stop = None
        await asyncio.gather(*(c.reset() for c in self._conditions))

    def to_spec(self) -> ConditionSpec:
        return AnyOfCondition(type="or", conditions=_flat_parts(self, OrTermination))


class AndTermination(TerminationCondition):
    """Stops once every part has fired, in this batch or an earlier one."""

    def __init__(self, *conditions: TerminationCondition) -> None:
        self._conditions = conditions
        self._fired: dict[int, StopMessage] = {}
        self._stop: StopMessage | None = None

    @property
    def terminated(self) -> bool:
        return self._stop is not None

    async def __call__(self, messages: Sequence[AnyMessage]) -> StopMessage | None:
        if self._stop is not None:
            return self._stop
        for index, condition in enumerate(self._conditions):
            if index in self._fired:
                continue
            stop = await condition(messages)
            if stop is not None:
                self._fired[index] = stop
        if len(self._fired) == len(self._conditions):
            reasons = [self._fired[i].content for i in range(len(self._conditions))]
            self._stop = StopMessage(source=_SOURCE, content=" and ".join(reasons))
        return self._stop

    async def reset(self) -> None:
        self._fired.clear()
        self._stop = None
        await asyncio.gather(*(c.reset() for c in self._conditions))

    def to_spec(self) -> ConditionSpec:
        return AllOfCondition(type="and", conditions=_flat_parts(self, AndTermination))


def _flat_parts(
    condition: OrTermination | AndTermination, kind: type[OrTermination | AndTermination]
) -> list[ConditionSpec]:
    """The parts' specs, with ``a | b | c`` (built as ``(a | b) | c``) written as one list."""
    parts: list[ConditionSpec] = []
    for part in condition._conditions:
        if type(part) is kind:
            parts.extend(_flat_parts(part, kind))
        else:
            parts.append(part.to_spec())
    return parts


def condition_from_spec(spec: ConditionSpec) -> TerminationCondition:
    """The live condition a spec node describes, nesting included."""
    if isinstance(spec, MaxMessagesCondition):
        return MaxMessageTermination(spec.max_messages)
    if isinstance(spec, TextMentionCondition):
        return TextMentionTermination(spec.text, sources=spec.sources)
    if isinstance(spec, HandoffCondition):
        return HandoffTermination(spec.target)
    if isinstance(spec, TimeoutCondition):
        return TimeoutTermination(spec.timeout_s)
    if isinstance(spec, TokenUsageCondition):
        return TokenUsageTermination(
            max_total_token=spec.max_total_tokens,
            max_prompt_token=spec.max_prompt_tokens,
            max_completion_token=spec.max_completion_tokens,
        )
    parts = [condition_from_spec(part) for part in spec.conditions]
    if isinstance(spec, AllOfCondition):
        return AndTermination(*parts)
    return OrTermination(*parts)
