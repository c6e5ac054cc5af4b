"""Teams: turn order, selector retries and fallback, swarm routing, run_stream shape."""

from __future__ import annotations

import pytest

from agent_client.agents import AssistantAgent
from agent_client.conditions import (
    HandoffTermination,
    MaxMessageTermination,
    TextMentionTermination,
)
from agent_client.errors import TeamError
from agent_client.messages import HandoffMessage, SelectSpeakerEvent, TaskResult, TextMessage
from agent_client.models.scripted import ScriptedModelClient, tool_call
from agent_client.teams import RoundRobinGroupChat, SelectorGroupChat, Swarm


def agent(name: str, *replies: str, description: str = "") -> AssistantAgent:
    return AssistantAgent(
        name, ScriptedModelClient(list(replies), repeat_last=True), description=description or name
    )


def speakers(result: TaskResult) -> list[str]:
    return [m.source for m in result.messages if isinstance(m, TextMessage | HandoffMessage)]


async def test_round_robin_order_and_stream_ends_with_result() -> None:
    team = RoundRobinGroupChat(
        [agent("a", "hi"), agent("b", "hello")], termination_condition=MaxMessageTermination(5)
    )
    items = [item async for item in team.run_stream("start")]
    assert isinstance(items[-1], TaskResult)
    result = items[-1]
    assert speakers(result) == ["user", "a", "b", "a", "b"]
    assert result.stop_reason == "Maximum number of messages 5 reached."
    assert items[:-1] == result.messages


async def test_text_mention_in_task_does_not_stop_the_team() -> None:
    team = RoundRobinGroupChat(
        [agent("a", "working"), agent("b", "DONE")],
        termination_condition=TextMentionTermination("DONE"),
    )
    result = await team.run("say DONE when finished")
    assert speakers(result) == ["user", "a", "b"]
    assert result.stop_reason is not None
    assert "b" in result.stop_reason


async def test_max_turns_and_continuing_a_stopped_run() -> None:
    team = RoundRobinGroupChat([agent("a", "x"), agent("b", "y"), agent("c", "z")], max_turns=2)
    first = await team.run("go")
    second = await team.run()
    assert speakers(first) == ["user", "a", "b"]
    assert speakers(second) == ["c", "a"]
    assert first.stop_reason == "Maximum number of turns 2 reached."


async def test_no_task_and_no_history_is_an_error() -> None:
    team = RoundRobinGroupChat([agent("a", "x")], max_turns=1)
    with pytest.raises(TeamError, match="no task"):
        await team.run()


def test_duplicate_names_and_unbounded_teams_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        RoundRobinGroupChat([agent("a"), agent("a")], max_turns=1)
    with pytest.raises(ValueError, match="never stops"):
        RoundRobinGroupChat([agent("a")])


async def test_selector_follows_a_clean_pick() -> None:
    selector = ScriptedModelClient(["writer", "critic"])
    team = SelectorGroupChat(
        [agent("writer", "draft"), agent("critic", "notes")],
        selector,
        termination_condition=MaxMessageTermination(3),
    )
    result = await team.run("write a poem")
    assert speakers(result) == ["user", "writer", "critic"]
    prompt = selector.calls[0]["messages"][0].content
    assert "- writer: writer" in prompt
    assert "[user]: write a poem" in prompt


async def test_selector_retries_an_ambiguous_pick_with_feedback() -> None:
    selector = ScriptedModelClient(["writer or critic?", "I pick nobody", "critic"])
    team = SelectorGroupChat(
        [agent("writer", "draft"), agent("critic", "notes")],
        selector,
        termination_condition=MaxMessageTermination(2),
        max_selector_attempts=3,
    )
    result = await team.run("go")
    assert speakers(result) == ["user", "critic"]
    feedback = selector.calls[1]["messages"][-1].content
    assert "several roles" in feedback
    events = [m for m in result.messages if isinstance(m, SelectSpeakerEvent)]
    assert [e.content for e in events][-1] == "critic"


async def test_selector_falls_back_to_order_and_never_livelocks() -> None:
    selector = ScriptedModelClient(["hmm"], repeat_last=True)
    team = SelectorGroupChat(
        [agent("a", "1"), agent("b", "2"), agent("c", "3")],
        selector,
        termination_condition=MaxMessageTermination(5),
        max_selector_attempts=2,
    )
    result = await team.run("go")
    assert speakers(result) == ["user", "a", "b", "c", "a"]
    fallbacks = [m for m in result.messages if isinstance(m, SelectSpeakerEvent) and m.fallback]
    assert len(fallbacks) == 4
    assert len(selector.calls) == 8


async def test_selector_refuses_a_repeated_speaker_unless_allowed() -> None:
    selector = ScriptedModelClient(["a", "a", "a", "b"])
    team = SelectorGroupChat(
        [agent("a", "1"), agent("b", "2")],
        selector,
        termination_condition=MaxMessageTermination(3),
    )
    result = await team.run("go")
    # After a speaks, "a" is not a candidate: the only candidate (b) is chosen without asking.
    assert speakers(result) == ["user", "a", "b"]
    assert len(selector.calls) == 1


async def test_selector_func_decides_and_none_defers_to_the_model() -> None:
    selector = ScriptedModelClient(["b"])
    team = SelectorGroupChat(
        [agent("a", "1"), agent("b", "2")],
        selector,
        selector_func=lambda thread: "a" if len(thread) == 1 else None,
        termination_condition=MaxMessageTermination(3),
    )
    result = await team.run("go")
    assert speakers(result) == ["user", "a", "b"]


async def test_swarm_routes_to_the_latest_handoff_target() -> None:
    triage = AssistantAgent(
        "triage",
        ScriptedModelClient([tool_call("transfer_to_billing")]),
        handoffs=["billing"],
    )
    billing = AssistantAgent(
        "billing",
        ScriptedModelClient(["Refund issued.", tool_call("transfer_to_user")]),
        handoffs=["user", "triage"],
    )
    team = Swarm([triage, billing], termination_condition=HandoffTermination("user"))
    result = await team.run("I want a refund")
    assert speakers(result) == ["user", "triage", "billing", "billing"]
    handoffs = [m for m in result.messages if isinstance(m, HandoffMessage)]
    assert [(h.source, h.target) for h in handoffs] == [("triage", "billing"), ("billing", "user")]
    assert result.stop_reason is not None
    assert "user" in result.stop_reason


async def test_swarm_resumes_with_the_agent_that_handed_off_to_the_human() -> None:
    billing = AssistantAgent(
        "billing",
        ScriptedModelClient([tool_call("transfer_to_user"), "Thanks, done."]),
        handoffs=["user"],
    )
    other = agent("other", "should not speak")
    team = Swarm(
        [other, billing],
        termination_condition=HandoffTermination("user") | MaxMessageTermination(2),
    )
    await team.run(HandoffMessage(source="user", content="billing please", target="billing"))
    resumed = await team.run("my order is 42")
    assert speakers(resumed) == ["user", "billing"]
