"""save_state/load_state resume a stopped team; cancellation stops mid-turn and cleans up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

from agent_client.agents import AssistantAgent, CodeExecutorAgent
from agent_client.cancellation import CancellationToken
from agent_client.conditions import MaxMessageTermination
from agent_client.errors import TeamError
from agent_client.executors import CodeResult, ScriptedExecutor
from agent_client.messages import CodeBlock, TextMessage
from agent_client.models.base import CreateResult, LLMMessage
from agent_client.models.scripted import ScriptedModelClient
from agent_client.teams import RoundRobinGroupChat, SelectorGroupChat


def make_team(model_a: ScriptedModelClient, model_b: ScriptedModelClient) -> RoundRobinGroupChat:
    return RoundRobinGroupChat(
        [AssistantAgent("a", model_a), AssistantAgent("b", model_b)],
        termination_condition=MaxMessageTermination(3),
    )


async def test_state_survives_json_and_a_new_team_resumes_where_it_stopped() -> None:
    first = make_team(ScriptedModelClient(["a1"]), ScriptedModelClient(["b1"]))
    await first.run("the task")
    state = json.loads(json.dumps(await first.save_state()))

    model_a = ScriptedModelClient(["a2", "a3"])
    model_b = ScriptedModelClient(["b2"])
    second = make_team(model_a, model_b)
    await second.load_state(state)
    result = await second.run()
    assert [m.source for m in result.messages] == ["a", "b", "a"]
    # a's model sees the whole earlier conversation, labelled, after the restore.
    shown = [m.content for m in model_a.calls[0]["messages"][1:]]
    assert shown == ["[user]: the task", "a1", "[b]: b1"]


async def test_state_of_another_team_type_is_refused() -> None:
    team = make_team(ScriptedModelClient(["x"]), ScriptedModelClient(["y"]))
    state = await team.save_state()
    state["team"] = "Swarm"
    with pytest.raises(TeamError, match="Swarm"):
        await make_team(ScriptedModelClient([]), ScriptedModelClient([])).load_state(state)


async def test_reset_forgets_the_conversation() -> None:
    team = make_team(ScriptedModelClient(["a1", "a2"]), ScriptedModelClient(["b1"]))
    await team.run("first task")
    await team.reset()
    assert team.thread == []
    with pytest.raises(TeamError):
        await team.run()


class SlowModel:
    """A model whose answer never comes, to cancel in the middle of a call."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def create(self, messages: Sequence[LLMMessage], **_: object) -> CreateResult:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return CreateResult()


async def test_token_cancels_the_current_model_call_and_run_end_still_happens() -> None:
    executor = ScriptedExecutor([CodeResult(0, "ok")])
    slow = SlowModel()
    team = RoundRobinGroupChat(
        [CodeExecutorAgent("executor", executor), AssistantAgent("slow", slow)],
        termination_condition=MaxMessageTermination(10),
    )
    token = CancellationToken()
    run = asyncio.ensure_future(team.run("```python\nprint(1)\n```", cancellation=token))
    await slow.started.wait()
    token.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert slow.cancelled
    assert executor.starts == 1
    assert executor.stops == 1
    assert not executor.running
    # The thread survived: the executor's result is there, and the team can run again.
    assert [m.source for m in team.thread] == ["user", "executor"]


async def test_task_cancellation_also_ends_the_run_cleanly() -> None:
    executor = ScriptedExecutor([CodeResult(0, "ok")])
    slow = SlowModel()
    team = SelectorGroupChat(
        [CodeExecutorAgent("executor", executor), AssistantAgent("slow", slow)],
        selector_func=lambda thread: "executor" if len(thread) == 1 else "slow",
        termination_condition=MaxMessageTermination(10),
    )
    run = asyncio.ensure_future(team.run("```python\nprint(1)\n```"))
    await slow.started.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert executor.stops == 1
    assert executor.executed == [[CodeBlock(code="print(1)\n", language="python")]]


async def test_a_team_cannot_run_twice_at_once() -> None:
    slow = SlowModel()
    team = RoundRobinGroupChat([AssistantAgent("slow", slow)], max_turns=1)
    run = asyncio.ensure_future(team.run("go"))
    await slow.started.wait()
    with pytest.raises(TeamError, match="already running"):
        await team.run("again")
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


async def test_consumer_breaking_out_of_the_stream_still_ends_the_run() -> None:
    executor = ScriptedExecutor([CodeResult(0, "ok")] * 3)
    team = RoundRobinGroupChat(
        [
            CodeExecutorAgent("executor", executor),
            AssistantAgent("a", ScriptedModelClient(["x"], repeat_last=True)),
        ],
        max_turns=10,
    )
    stream = team.run_stream("```python\nprint(1)\n```")
    async for item in stream:
        if isinstance(item, TextMessage) and item.source == "a":
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert executor.stops == 1
    await team.run()  # not stuck in "running"
