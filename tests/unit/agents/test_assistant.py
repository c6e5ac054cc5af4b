"""AssistantAgent: labelled context, tools, handoffs, reflection, forced tool choice."""

from __future__ import annotations

from agent_client.agents import AssistantAgent
from agent_client.messages import (
    HandoffMessage,
    TextMessage,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
    ToolCallSummaryMessage,
)
from agent_client.models.base import AssistantMessage, SystemMessage, ToolResultMessage, UserMessage
from agent_client.models.scripted import ScriptedModelClient, tool_call


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def test_other_speakers_are_labelled_and_own_turns_are_assistant() -> None:
    model = ScriptedModelClient(["first", "second"])
    agent = AssistantAgent("coder", model, system_message="be brief")
    task = TextMessage(source="user", content="do it", metadata={"role": "task"})
    await agent.on_messages([task])
    await agent.on_messages([TextMessage(source="reviewer", content="REVISE: add tests")])
    shown = model.calls[1]["messages"]
    assert shown[0] == SystemMessage(content="be brief")
    assert isinstance(shown[1], UserMessage)
    assert shown[1].content == "[user]: do it"
    assert isinstance(shown[2], AssistantMessage)
    assert shown[2].content == "first"
    assert isinstance(shown[3], UserMessage)
    assert shown[3].content == "[reviewer]: REVISE: add tests"


async def test_short_context_keeps_the_task_first() -> None:
    model = ScriptedModelClient(["ok"])
    agent = AssistantAgent("coder", model, max_context_messages=2, system_message=None)
    task = TextMessage(source="user", content="THE TASK", metadata={"role": "task"})
    chatter = [TextMessage(source="other", content=f"m{i}") for i in range(5)]
    await agent.on_messages([task, *chatter])
    contents = [m.content for m in model.calls[0]["messages"]]
    assert contents == ["[user]: THE TASK", "[other]: m3", "[other]: m4"]


async def test_tool_call_then_summary_without_reflection() -> None:
    model = ScriptedModelClient([tool_call("add", {"a": 2, "b": 3})])
    agent = AssistantAgent("calc", model, tools=[add])
    items = [
        item async for item in agent.on_messages_stream([TextMessage(source="u", content="2+3")])
    ]
    assert isinstance(items[0], ToolCallRequestEvent)
    assert isinstance(items[1], ToolCallExecutionEvent)
    assert items[1].content[0].content == "5"
    response = items[-1]
    assert isinstance(response.chat_message, ToolCallSummaryMessage)  # type: ignore[union-attr]
    assert response.chat_message.content == "5"  # type: ignore[union-attr]
    assert model.calls[0]["tools"][0].name == "add"


async def test_reflection_sends_tool_results_back_to_the_model() -> None:
    model = ScriptedModelClient([tool_call("add", {"a": 2, "b": 3}), "The sum is 5."])
    agent = AssistantAgent("calc", model, tools=[add], reflect_on_tool_use=True)
    response = await agent.on_messages([TextMessage(source="u", content="2+3")])
    assert isinstance(response.chat_message, TextMessage)
    assert response.chat_message.content == "The sum is 5."
    second = model.calls[1]
    assert second["tools"] == []
    assert isinstance(second["messages"][-2], AssistantMessage)
    assert isinstance(second["messages"][-1], ToolResultMessage)
    assert second["messages"][-1].results[0].content == "5"


async def test_several_tool_iterations_then_answer() -> None:
    model = ScriptedModelClient(
        [tool_call("add", {"a": 1, "b": 1}), tool_call("add", {"a": 2, "b": 2}), "done: 4"]
    )
    agent = AssistantAgent("calc", model, tools=[add], max_tool_iterations=3)
    response = await agent.on_messages([TextMessage(source="u", content="go")])
    assert response.chat_message.to_text() == "done: 4"
    assert len(model.calls) == 3


async def test_unknown_tool_is_an_error_result_not_a_crash() -> None:
    model = ScriptedModelClient([tool_call("multiply", {"a": 1})])
    agent = AssistantAgent("calc", model, tools=[add])
    response = await agent.on_messages([TextMessage(source="u", content="go")])
    assert "no tool named 'multiply'" in response.chat_message.to_text()


async def test_handoff_tool_produces_a_handoff_message() -> None:
    model = ScriptedModelClient([tool_call("transfer_to_billing")])
    agent = AssistantAgent("triage", model, handoffs=["billing"])
    response = await agent.on_messages([TextMessage(source="u", content="refund please")])
    assert isinstance(response.chat_message, HandoffMessage)
    assert response.chat_message.target == "billing"
    assert model.calls[0]["tools"][0].name == "transfer_to_billing"


async def test_forced_tool_choice_only_on_the_first_call() -> None:
    model = ScriptedModelClient([tool_call("add", {"a": 1, "b": 2}), "3"])
    agent = AssistantAgent("calc", model, tools=[add], tool_choice="add", max_tool_iterations=2)
    await agent.on_messages([TextMessage(source="u", content="go")])
    assert [c["tool_choice"] for c in model.calls] == ["add", "auto"]
