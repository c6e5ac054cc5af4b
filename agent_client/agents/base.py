"""The agent contract teams rely on: a name, a description, and turns that stream events."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent_client.cancellation import CancellationToken
from agent_client.messages import AnyMessage, ChatMessage

# Names end up in tool names (transfer_to_<name>) and in "[name]: ..." labels.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Response:
    """An agent's answer for one turn and the events that led to it."""

    chat_message: ChatMessage
    inner_messages: Sequence[AnyMessage] = field(default_factory=tuple)


class BaseChatAgent(ABC):
    """An agent that takes the messages it has not seen yet and answers with one chat message.

    Subclasses implement ``on_messages_stream`` (yield events, then one ``Response`` last),
    ``on_reset``, and state if they keep any. ``on_run_end`` lets an agent release what a team
    run held (an executor's session) whenever the run ends, also on error or cancellation.
    """

    def __init__(self, name: str, description: str) -> None:
        if not _NAME.match(name):
            raise ValueError(f"agent name {name!r} must match {_NAME.pattern}")
        self._name = name
        self._description = description

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        return self._description

    @abstractmethod
    def on_messages_stream(
        self, messages: Sequence[ChatMessage], cancellation: CancellationToken | None = None
    ) -> AsyncIterator[AnyMessage | Response]:
        """Take new messages, yield events as they happen, and a Response last."""

    async def on_messages(
        self, messages: Sequence[ChatMessage], cancellation: CancellationToken | None = None
    ) -> Response:
        response: Response | None = None
        async for item in self.on_messages_stream(messages, cancellation):
            if isinstance(item, Response):
                response = item
        if response is None:
            raise RuntimeError(f"agent {self.name} ended its turn without a response")
        return response

    @abstractmethod
    async def on_reset(self, cancellation: CancellationToken | None = None) -> None:
        """Forget the conversation, as if new."""

    async def on_run_end(self) -> None:
        """Called by a team when a run stops, whatever the reason."""
        return None

    async def save_state(self) -> dict[str, Any]:
        return {}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        return None
