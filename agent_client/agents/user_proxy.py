"""UserProxyAgent: a human's turn, through an input function the caller injects."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from agent_client.agents.base import BaseChatAgent, Response
from agent_client.cancellation import CancellationToken
from agent_client.messages import AnyMessage, ChatMessage, HandoffMessage, TextMessage

InputFunc = Callable[[str], str] | Callable[[str], Awaitable[str]]


class UserProxyAgent(BaseChatAgent):
    """Asks ``input_func`` for the human's reply (sync functions run in a thread).

    When the conversation was handed to this agent, the reply is handed back to whoever
    handed it over, so a Swarm returns to that agent.
    """

    def __init__(
        self,
        name: str,
        input_func: InputFunc,
        *,
        description: str = "A human who answers questions and gives approval.",
        prompt: str = "Your reply: ",
    ) -> None:
        super().__init__(name, description)
        self._input = input_func
        self._prompt = prompt

    async def on_messages_stream(
        self, messages: Sequence[ChatMessage], cancellation: CancellationToken | None = None
    ) -> AsyncIterator[AnyMessage | Response]:
        if inspect.iscoroutinefunction(self._input):
            reply = await self._input(self._prompt)
        else:
            reply = await asyncio.to_thread(self._input, self._prompt)
        if not isinstance(reply, str):
            raise TypeError(f"{self.name}: input function returned {type(reply).__name__}")
        handed = next(
            (m for m in reversed(messages) if isinstance(m, HandoffMessage)),
            None,
        )
        message: ChatMessage
        if handed is not None and handed.target == self.name:
            message = HandoffMessage(source=self.name, content=reply, target=handed.source)
        else:
            message = TextMessage(source=self.name, content=reply)
        yield Response(chat_message=message)

    async def on_reset(self, cancellation: CancellationToken | None = None) -> None:
        return None
