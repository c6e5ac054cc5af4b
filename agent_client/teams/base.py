"""BaseGroupChat: the run loop every team shares; subclasses only choose who speaks next.

A run streams each message and event as it happens and ends with a TaskResult. The thread
survives a stop (termination, error, cancellation), so calling ``run`` again continues the
conversation; ``save_state``/``load_state`` carry it across processes as JSON.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from agent_client.agents.base import BaseChatAgent, Response
from agent_client.cancellation import CancellationToken
from agent_client.conditions import TerminationCondition
from agent_client.errors import TeamError
from agent_client.messages import (
    CHAT_MESSAGE_TYPES,
    CHAT_MESSAGES,
    AnyMessage,
    ChatMessage,
    TaskResult,
    TextMessage,
)

logger = logging.getLogger(__name__)

Task = str | ChatMessage | Sequence[ChatMessage]
STATE_VERSION = 1


class BaseGroupChat(ABC):
    """Participants take turns on a shared thread until the termination condition fires.

    Args:
        participants: agents with distinct names.
        termination_condition: when a run stops; None runs until ``max_turns``.
        max_turns: turns per run (None: no limit; then a condition is required).
        task_source: the ``source`` given to a task passed as a string.
    """

    def __init__(
        self,
        participants: Sequence[BaseChatAgent],
        *,
        termination_condition: TerminationCondition | None = None,
        max_turns: int | None = None,
        task_source: str = "user",
    ) -> None:
        if not participants:
            raise ValueError("a team needs at least one participant")
        names = [p.name for p in participants]
        if len(set(names)) != len(names):
            raise ValueError(f"participant names must be unique: {names}")
        if termination_condition is None and max_turns is None:
            raise ValueError("give a termination_condition or max_turns, or a run never stops")
        self._participants = list(participants)
        self._agents = {p.name: p for p in participants}
        self._termination = termination_condition
        self._max_turns = max_turns
        self._task_source = task_source
        self._thread: list[ChatMessage] = []
        self._pending: dict[str, list[ChatMessage]] = {name: [] for name in names}
        self._last_speaker: str | None = None
        self._running = False

    @property
    def participants(self) -> list[BaseChatAgent]:
        return list(self._participants)

    @property
    def thread(self) -> list[ChatMessage]:
        return list(self._thread)

    @abstractmethod
    async def select_speaker(
        self, thread: Sequence[ChatMessage], cancellation: CancellationToken
    ) -> tuple[str, list[AnyMessage]]:
        """The next speaker's name, and any events about the choice to show."""

    async def run(
        self, task: Task | None = None, *, cancellation: CancellationToken | None = None
    ) -> TaskResult:
        result: TaskResult | None = None
        async for item in self.run_stream(task, cancellation=cancellation):
            if isinstance(item, TaskResult):
                result = item
        if result is None:
            raise TeamError("run ended without a result")
        return result

    async def run_stream(
        self, task: Task | None = None, *, cancellation: CancellationToken | None = None
    ) -> AsyncIterator[AnyMessage | TaskResult]:
        """Yield every message and event of the run, then the TaskResult.

        Args:
            task: what to do; None continues the conversation where the last run stopped.
            cancellation: cancel it to stop mid-turn (model call or remote execution); the run
                then raises ``asyncio.CancelledError`` and its thread stays resumable.

        Raises:
            TeamError: the team is already running, or there is nothing to do.
        """
        if self._running:
            raise TeamError("this team is already running")
        self._running = True
        token = cancellation or CancellationToken()
        produced: list[AnyMessage] = []
        stop_reason: str | None = None
        try:
            task_messages = self._task_messages(task)
            if not task_messages and not self._thread:
                raise TeamError("no task given and no conversation to continue")
            for message in task_messages:
                produced.append(message)
                yield message
            self._thread.extend(task_messages)
            self._deliver(task_messages, sender=None)
            if task_messages:
                stop_reason = await self._check(task_messages)
            turns = 0
            while stop_reason is None:
                if token.cancelled:
                    raise asyncio.CancelledError
                speaker, events = await self.select_speaker(self._thread, token)
                if speaker not in self._agents:
                    raise TeamError(f"selected speaker {speaker!r} is not a participant")
                batch: list[AnyMessage] = list(events)
                for event in events:
                    produced.append(event)
                    yield event
                response: Response | None = None
                async for item in self._turn(self._agents[speaker], token):
                    if isinstance(item, Response):
                        response = item
                    else:
                        produced.append(item)
                        batch.append(item)
                        yield item
                if response is None:
                    raise TeamError(f"{speaker} ended its turn without a response")
                message = response.chat_message
                produced.append(message)
                batch.append(message)
                self._thread.append(message)
                self._deliver([message], sender=speaker)
                self._last_speaker = speaker
                turns += 1
                yield message
                stop_reason = await self._check(batch)
                if stop_reason is None and self._max_turns is not None and turns >= self._max_turns:
                    stop_reason = f"Maximum number of turns {self._max_turns} reached."
        finally:
            self._running = False
            await asyncio.shield(self._end_run())
        yield TaskResult(messages=produced, stop_reason=stop_reason)

    async def _turn(
        self, agent: BaseChatAgent, token: CancellationToken
    ) -> AsyncIterator[AnyMessage | Response]:
        """One agent's turn, each step linked to the token so cancel() reaches any await."""
        new = self._pending[agent.name]
        self._pending[agent.name] = []
        stream = agent.on_messages_stream(new, token)
        try:
            while True:
                step: asyncio.Future[AnyMessage | Response] = asyncio.ensure_future(anext(stream))
                token.link(step)
                try:
                    item = await step
                except StopAsyncIteration:
                    return
                yield item
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def _check(self, batch: Sequence[AnyMessage]) -> str | None:
        if self._termination is None:
            return None
        stop = await self._termination(batch)
        return stop.content if stop is not None else None

    async def _end_run(self) -> None:
        for agent in self._participants:
            await agent.on_run_end()
        if self._termination is not None:
            await self._termination.reset()

    def _deliver(self, messages: Sequence[ChatMessage], *, sender: str | None) -> None:
        for name, inbox in self._pending.items():
            if name != sender:
                inbox.extend(messages)

    def _task_messages(self, task: Task | None) -> list[ChatMessage]:
        if task is None:
            return []
        if isinstance(task, str):
            items: list[ChatMessage] = [TextMessage(source=self._task_source, content=task)]
        elif isinstance(task, CHAT_MESSAGE_TYPES):
            items = [task]
        else:
            items = list(task)
        return [m.model_copy(update={"metadata": {**m.metadata, "role": "task"}}) for m in items]

    async def reset(self) -> None:
        """Forget the conversation and every agent's memory of it."""
        if self._running:
            raise TeamError("cannot reset a running team")
        self._thread.clear()
        for inbox in self._pending.values():
            inbox.clear()
        self._last_speaker = None
        for agent in self._participants:
            await agent.on_reset()
        if self._termination is not None:
            await self._termination.reset()
        self._reset_extra()

    async def save_state(self) -> dict[str, Any]:
        """A JSON-able snapshot that ``load_state`` resumes from (not while running)."""
        if self._running:
            raise TeamError("cannot save the state of a running team")
        return {
            "version": STATE_VERSION,
            "team": type(self).__name__,
            "thread": CHAT_MESSAGES.dump_python(self._thread, mode="json"),
            "pending": {
                name: CHAT_MESSAGES.dump_python(msgs, mode="json")
                for name, msgs in self._pending.items()
            },
            "last_speaker": self._last_speaker,
            "agents": {a.name: await a.save_state() for a in self._participants},
            "extra": self._save_extra(),
        }

    async def load_state(self, state: Mapping[str, Any]) -> None:
        if self._running:
            raise TeamError("cannot load state into a running team")
        if state.get("version") != STATE_VERSION or state.get("team") != type(self).__name__:
            raise TeamError(
                f"state is for {state.get('team')} v{state.get('version')}, "
                f"not {type(self).__name__} v{STATE_VERSION}"
            )
        agents = state.get("agents", {})
        missing = set(self._agents) - set(agents)
        if missing:
            raise TeamError(f"state has no entry for participants {sorted(missing)}")
        self._thread = CHAT_MESSAGES.validate_python(state.get("thread", []))
        pending = state.get("pending", {})
        self._pending = {
            name: CHAT_MESSAGES.validate_python(pending.get(name, [])) for name in self._agents
        }
        self._last_speaker = state.get("last_speaker")
        for agent in self._participants:
            await agent.load_state(agents[agent.name])
        self._load_extra(state.get("extra", {}))

    def _save_extra(self) -> dict[str, Any]:
        return {}

    def _load_extra(self, extra: Mapping[str, Any]) -> None:
        return None

    def _reset_extra(self) -> None:
        return None

    def _next_in_order(self, *, skip: str | None = None) -> str:
        """The participant after the last speaker, in the order given (skipping ``skip``)."""
        names = [p.name for p in self._participants]
        start = 0 if self._last_speaker is None else names.index(self._last_speaker) + 1
        for offset in range(len(names)):
            name = names[(start + offset) % len(names)]
            if name != skip or len(names) == 1:
                return name
        return names[0]
