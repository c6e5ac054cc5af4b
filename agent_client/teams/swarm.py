"""Swarm: the agent named in the latest handoff speaks next; no model picks speakers."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from agent_client.cancellation import CancellationToken
from agent_client.messages import AnyMessage, ChatMessage, HandoffMessage
from agent_client.teams.base import BaseGroupChat

logger = logging.getLogger(__name__)


class Swarm(BaseGroupChat):
    """Agents pass control with ``transfer_to_<name>`` tools (HandoffMessage).

    Until the first handoff the first participant speaks (and keeps speaking if it hands off to
    no one). A handoff to someone outside the team, such as a human stopped for with
    ``HandoffTermination``, returns to the agent that handed off when the run resumes.
    """

    async def select_speaker(
        self, thread: Sequence[ChatMessage], cancellation: CancellationToken
    ) -> tuple[str, list[AnyMessage]]:
        for message in reversed(thread):
            if not isinstance(message, HandoffMessage):
                continue
            if message.target in self._agents:
                return message.target, []
            if message.source in self._agents:
                logger.info(
                    "handoff to %s is outside the team; back to %s", message.target, message.source
                )
                return message.source, []
            break
        return self._last_speaker or self._participants[0].name, []
