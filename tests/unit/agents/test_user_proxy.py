"""UserProxyAgent: injected sync or async input, and handing a handoff back."""

from __future__ import annotations

from agent_client.agents import UserProxyAgent
from agent_client.messages import HandoffMessage, TextMessage


async def test_sync_input_function_answers_with_text() -> None:
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return "yes, go ahead"

    agent = UserProxyAgent("user", ask, prompt="> ")
    response = await agent.on_messages([TextMessage(source="coder", content="Shall I?")])
    assert response.chat_message == TextMessage(
        source="user", content="yes, go ahead", created_at=response.chat_message.created_at
    )
    assert prompts == ["> "]


async def test_async_input_and_a_handoff_goes_back_to_its_sender() -> None:
    async def ask(prompt: str) -> str:
        return "order 42"

    agent = UserProxyAgent("user", ask)
    response = await agent.on_messages(
        [HandoffMessage(source="billing", content="Which order?", target="user")]
    )
    assert isinstance(response.chat_message, HandoffMessage)
    assert response.chat_message.target == "billing"
    assert response.chat_message.content == "order 42"
