"""SelectorGroupChat: a model (or the caller's function) picks who speaks next.

A bad pick (no name, several names, a name not allowed) is retried with feedback up to
``max_selector_attempts`` times, then the team falls back to round-robin order, so a confused
selector costs a few calls but never stalls the run.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Sequence

from agent_client.agents.base import BaseChatAgent
from agent_client.cancellation import CancellationToken
from agent_client.conditions import TerminationCondition
from agent_client.messages import AnyMessage, ChatMessage, SelectSpeakerEvent
from agent_client.models.base import AssistantMessage, LLMMessage, ModelClient, UserMessage
from agent_client.teams.base import BaseGroupChat

logger = logging.getLogger(__name__)

SelectorFunc = Callable[[Sequence[ChatMessage]], str | Awaitable[str | None] | None]

DEFAULT_SELECTOR_PROMPT = """You choose who speaks next in a team working on a task.

Roles:
{roles}

Conversation so far (newest last):
{history}

Which role should speak next? Choose one of: {candidates}.
Answer with the role's name only."""

_SOURCE = "selector"


class SelectorGroupChat(BaseGroupChat):
    """A team whose next speaker is chosen by a model reading names, descriptions and history.

    Args:
        model_client: the selecting model; may be None when ``selector_func`` always decides.
        selector_prompt: template with ``{roles}``, ``{history}``, ``{candidates}``.
        allow_repeated_speaker: let the same agent speak twice in a row.
        max_selector_attempts: model tries before falling back to round-robin order.
        selector_func: called first with the thread; a name decides, None asks the model.
        history_messages: how many recent messages the selector reads.
    """

    def __init__(
        self,
        participants: Sequence[BaseChatAgent],
        model_client: ModelClient | None = None,
        *,
        termination_condition: TerminationCondition | None = None,
        max_turns: int | None = None,
        selector_prompt: str = DEFAULT_SELECTOR_PROMPT,
        allow_repeated_speaker: bool = False,
        max_selector_attempts: int = 3,
        selector_func: SelectorFunc | None = None,
        history_messages: int = 12,
        task_source: str = "user",
    ) -> None:
        super().__init__(
            participants,
            termination_condition=termination_condition,
            max_turns=max_turns,
            task_source=task_source,
        )
        if model_client is None and selector_func is None:
            raise ValueError("give a model_client, a selector_func, or both")
        if max_selector_attempts < 1:
            raise ValueError("max_selector_attempts must be at least 1")
        self._model = model_client
        self._prompt = selector_prompt
        self._allow_repeat = allow_repeated_speaker
        self._max_attempts = max_selector_attempts
        self._selector_func = selector_func
        self._history_messages = history_messages

    async def select_speaker(
        self, thread: Sequence[ChatMessage], cancellation: CancellationToken
    ) -> tuple[str, list[AnyMessage]]:
        if self._selector_func is not None:
            chosen = self._selector_func(thread)
            if inspect.isawaitable(chosen):
                chosen = await chosen
            if chosen is not None:
                if chosen in self._agents:
                    return chosen, [SelectSpeakerEvent(source=_SOURCE, content=chosen)]
                logger.warning(
                    "selector_func chose %r, not a participant; asking the model", chosen
                )
        candidates = self._candidates()
        if len(candidates) == 1:
            return candidates[0], [SelectSpeakerEvent(source=_SOURCE, content=candidates[0])]
        if self._model is not None:
            picked = await self._ask_model(self._model, thread, candidates, cancellation)
            if picked is not None:
                return picked
        skip = None if self._allow_repeat else self._last_speaker
        fallback = self._next_in_order(skip=skip)
        logger.info("selector gave no valid speaker; falling back to %s", fallback)
        return fallback, [SelectSpeakerEvent(source=_SOURCE, content=fallback, fallback=True)]

    def _candidates(self) -> list[str]:
        names = [p.name for p in self._participants]
        if self._allow_repeat or self._last_speaker is None or len(names) == 1:
            return names
        return [n for n in names if n != self._last_speaker]

    async def _ask_model(
        self,
        model: ModelClient,
        thread: Sequence[ChatMessage],
        candidates: list[str],
        cancellation: CancellationToken,
    ) -> tuple[str, list[AnyMessage]] | None:
        roles = "\n".join(
            f"- {p.name}: {p.description}" for p in self._participants if p.name in candidates
        )
        history = "\n".join(
            f"[{m.source}]: {m.to_text()}" for m in thread[-self._history_messages :]
        )
        prompt = self._prompt.format(
            roles=roles, history=history or "(nothing yet)", candidates=", ".join(candidates)
        )
        messages: list[LLMMessage] = [UserMessage(content=prompt, source=_SOURCE)]
        events: list[AnyMessage] = []
        for _ in range(self._max_attempts):
            answer = await model.create(messages, cancellation=cancellation)
            named = mentioned_names(answer.content, [p.name for p in self._participants])
            valid = [n for n in named if n in candidates]
            if len(named) == 1 and valid:
                events.append(
                    SelectSpeakerEvent(source=_SOURCE, content=valid[0], models_usage=answer.usage)
                )
                return valid[0], events
            if not named:
                problem = "named no role"
            elif len(named) > 1:
                problem = f"named several roles ({', '.join(named)})"
            else:
                problem = f"named {named[0]}, who may not speak now"
            events.append(
                SelectSpeakerEvent(
                    source=_SOURCE,
                    content=f"invalid pick: {problem}",
                    models_usage=answer.usage,
                )
            )
            messages += [
                AssistantMessage(content=answer.content, source=_SOURCE),
                UserMessage(
                    content=f"Your answer {problem}. Reply with exactly one of: "
                    f"{', '.join(candidates)}.",
                    source=_SOURCE,
                ),
            ]
        return None


def mentioned_names(text: str, names: Sequence[str]) -> list[str]:
    """Participant names ``text`` mentions as whole words; an exact answer wins outright."""
    stripped = text.strip().strip("`'\".*[]").strip()
    for name in names:
        if stripped.lower() == name.lower():
            return [name]
    found = []
    for name in names:
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.IGNORECASE):
            found.append(name)
    return found
