"""RoundRobinGroupChat: participants speak in the order given, over and over."""

from __future__ import annotations

from collections.abc import Sequence

from agent_client.cancellation import CancellationToken
from agent_client.messages import AnyMessage, ChatMessage
from agent_client.teams.base import BaseGroupChat


class RoundRobinGroupChat(BaseGroupChat):
    """Each participant in turn; a resumed run continues after the last one who spoke."""

    async def select_speaker(
        self, thread: Sequence[ChatMessage], cancellation: CancellationToken
    ) -> tuple[str, list[AnyMessage]]:
        return self._next_in_order(), []
