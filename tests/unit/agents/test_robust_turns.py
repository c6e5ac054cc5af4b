"""Turns that survive a small local model: max_tokens, cut-off replies, failed calls, checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent_client.agents.assistant import CONTINUE_PROMPT, AssistantAgent
from agent_client.agents.code_executor import CodeExecutorAgent
from agent_client.code_blocks import choose_program, has_unclosed_fence
from agent_client.errors import ModelError
from agent_client.executors import CodeResult, ScriptedExecutor
from agent_client.messages import CodeBlock, CodeExecutionEvent, TextMessage
from agent_client.models.base import CreateResult, UserMessage
from agent_client.models.scripted import ScriptedModelClient
from agent_client.spec import TeamSpec
from agent_client.team_builder import open_team
from agent_client.teams import planner_coder_reviewer
from agent_client.teams.role_guards import NO_REASON_NOTE
from agent_client.teams.verification import TestRunnerAgent

TASK = [TextMessage(source="user", content="Write add(a, b).", metadata={"role": "task"})]


async def test_max_tokens_reaches_every_call() -> None:
    model = ScriptedModelClient(["ok"])
    agent = AssistantAgent("coder", model, max_tokens=128)
    await agent.on_messages(TASK)
    assert model.calls[0]["max_tokens"] == 128


async def test_a_reply_cut_at_the_length_limit_is_continued_and_joined() -> None:
    model = ScriptedModelClient(
        [
            CreateResult(content="```python\ndef add(a, b):\n", finish_reason="length"),
            CreateResult(content="    return a + b\n```", finish_reason="stop"),
        ]
    )
    agent = AssistantAgent("coder", model, max_tokens=16)
    response = await agent.on_messages(TASK)
    assert response.chat_message.to_text() == "```python\ndef add(a, b):\n    return a + b\n```"
    assert "reply" not in response.chat_message.metadata
    asked = model.calls[1]["messages"]
    assert isinstance(asked[-1], UserMessage)
    assert asked[-1].content == CONTINUE_PROMPT
    assert response.chat_message.models_usage is not None
    assert response.chat_message.models_usage.completion_tokens == 10  # both calls counted


async def test_a_reply_still_cut_off_is_marked_truncated() -> None:
    cut = CreateResult(content="```python\ndef add(a, b):\n", finish_reason="length")
    model = ScriptedModelClient([cut, cut])
    response = await AssistantAgent("coder", model).on_messages(TASK)
    assert response.chat_message.metadata["reply"] == "truncated"
    assert has_unclosed_fence(response.chat_message.to_text())


async def test_the_executor_says_a_cut_off_reply_has_no_closed_block() -> None:
    cut = TextMessage(source="coder", content="```python\ndef add(a, b):\n    return")
    agent = CodeExecutorAgent("executor", ScriptedExecutor([]))
    response = await agent.on_messages([cut])
    assert "never closed" in response.chat_message.to_text()


async def test_a_model_timeout_ends_the_turn_not_the_run() -> None:
    coder = ScriptedModelClient(
        [ModelError("model endpoint failed: Request timed out."), "```python\nprint(1)\n```"]
    )
    team = planner_coder_reviewer(
        {
            "planner": ScriptedModelClient(["1. add the numbers"]),
            "coder": coder,
            "reviewer": ScriptedModelClient(["APPROVE"]),
        },
        ScriptedExecutor([CodeResult(0, "1")]),
    )
    result = await team.run("Print 1.")
    failed = [m for m in result.messages if m.metadata.get("turn") == "failed"]
    assert [m.source for m in failed] == ["coder"]
    assert "timed out" in failed[0].metadata["error"]
    # The coder was asked again and the run finished with an approved, successful run.
    assert result.stop_reason == "reviewer approved a run that exited with code 0."
    assert team.answer == "print(1)\n"


async def test_model_errors_can_still_end_the_run_when_asked() -> None:
    agent = AssistantAgent("coder", ScriptedModelClient([]), on_model_error="raise")
    try:
        await agent.on_messages(TASK)
    except ModelError:
        return
    raise AssertionError("the ModelError was swallowed")


async def test_the_executor_runs_the_whole_program_not_a_leading_example() -> None:
    reply = (
        "Example:\n```python\nadd(1, 2)\n```\nProgram:\n"
        "```python\ndef add(a, b):\n    return a + b\n\nprint(add(1, 2))\n```"
    )
    seen: list[list[CodeBlock]] = []

    def sandbox(blocks: list[CodeBlock]) -> CodeResult:
        seen.append(list(blocks))
        return CodeResult(0, "3")

    agent = CodeExecutorAgent("executor", ScriptedExecutor([sandbox]), blocks="program")
    response = await agent.on_messages([TextMessage(source="coder", content=reply)])
    assert len(seen[0]) == 1
    assert "def add" in seen[0][0].code
    message = response.chat_message
    assert isinstance(message, CodeExecutionEvent)
    assert message.note.startswith("Ran block 2 of 2")


def test_choose_program_prefers_the_longest_block_and_the_later_on_a_tie() -> None:
    one = CodeBlock(code="x = 1\n", language="python")
    two = CodeBlock(code="y = 2\n", language="python")
    long = CodeBlock(code="def f():\n    return 1\nprint(f())\n", language="python")
    assert choose_program([one, long, two]) == 1
    assert choose_program([one, two]) == 1


async def test_a_plan_with_code_is_re_asked_then_stripped() -> None:
    planner = ScriptedModelClient(
        ["1. add\n```python\ndef add(a, b): ...\n```", "1. add\n```python\nreturn a+b\n```"]
    )
    team = planner_coder_reviewer(
        {
            "planner": planner,
            "coder": ScriptedModelClient(["```python\nprint(3)\n```"]),
            "reviewer": ScriptedModelClient(["APPROVE"]),
        },
        ScriptedExecutor([CodeResult(0, "3")]),
    )
    result = await team.run("Add.")
    plan = next(m for m in result.messages if m.source == "planner")
    assert plan.to_text() == "1. add"
    assert plan.metadata["reply"] == "repaired"
    assert "no code" in planner.calls[1]["messages"][-1].content


async def test_a_rejection_without_reasons_is_re_asked_once_then_ignored() -> None:
    reviewer = ScriptedModelClient(["REVISION", "REVISE", "APPROVE"])
    team = planner_coder_reviewer(
        {
            "planner": ScriptedModelClient(["1. print"]),
            "coder": ScriptedModelClient(["```python\nprint(1)\n```", "```python\nprint(2)\n```"]),
            "reviewer": reviewer,
        },
        ScriptedExecutor([CodeResult(0, "1"), CodeResult(0, "2")]),
    )
    result = await team.run("Print something.")
    reviews = [m for m in result.messages if m.source == "reviewer"]
    assert reviews[0].to_text() == NO_REASON_NOTE
    assert "needs reasons" in reviewer.calls[1]["messages"][-1].content
    assert result.stop_reason == "reviewer approved a run that exited with code 0."


async def test_a_rejection_with_reasons_passes_unchanged() -> None:
    reviewer = ScriptedModelClient(["REVISE: the output shows 1, the task asks for 2", "APPROVE"])
    team = planner_coder_reviewer(
        {
            "planner": ScriptedModelClient(["1. print"]),
            "coder": ScriptedModelClient(["```python\nprint(1)\n```", "```python\nprint(2)\n```"]),
            "reviewer": reviewer,
        },
        ScriptedExecutor([CodeResult(0, "1"), CodeResult(0, "2")]),
    )
    result = await team.run("Print 2.")
    reviews = [m.to_text() for m in result.messages if m.source == "reviewer"]
    assert reviews[0] == "REVISE: the output shows 1, the task asks for 2"
    assert len(reviewer.calls) == 2  # no re-ask


async def test_spec_max_tokens_and_tester_reach_the_team() -> None:
    spec = TeamSpec.model_validate(
        {
            "models": {"m": {"base_url": "http://127.0.0.1:9/v1", "model": "x", "max_tokens": 64}},
            "agents": [{"type": "assistant", "name": "a", "model": "m", "max_tokens": 32}],
            "team": {"type": "round_robin", "max_turns": 1},
        }
    )
    assert spec.models["m"].timeout_s == 600.0
    async with open_team(spec, env={}) as team:
        agent = team.participants[0]
        assert isinstance(agent, AssistantAgent)
        assert agent._max_tokens == 32  # the agent's own cap wins over the model's
    preset = TeamSpec.model_validate(
        {
            "models": {"m": {"base_url": "http://127.0.0.1:9/v1", "model": "x"}},
            "team": {"type": "planner_coder_reviewer", "model": "m", "tester": True},
            "executor": {"service_url": "http://127.0.0.1:9", "api_key_env": "K"},
        }
    )
    async with open_team(preset, env={"K": "k"}) as team:
        names = [p.name for p in team.participants]
        assert names == ["planner", "tester", "coder", "executor", "reviewer"]
        assert isinstance(team.participants[3], TestRunnerAgent)


async def test_spec_style_sampled_builds_the_sampling_team() -> None:
    preset = TeamSpec.model_validate(
        {
            "models": {"m": {"base_url": "http://127.0.0.1:9/v1", "model": "x"}},
            "team": {"type": "planner_coder_reviewer", "model": "m", "style": "sampled"},
            "executor": {"service_url": "http://127.0.0.1:9", "api_key_env": "K"},
        }
    )
    async with open_team(preset, env={"K": "k"}) as team:
        names = [p.name for p in team.participants]
        assert names == ["coder", "sampler", "executor"]
        assert isinstance(team.participants[2], TestRunnerAgent)
    with pytest.raises(ValidationError, match="style"):
        TeamSpec.model_validate(
            {
                "models": {"m": {"base_url": "http://127.0.0.1:9/v1", "model": "x"}},
                "team": {"type": "planner_coder_reviewer", "model": "m", "style": "fast"},
            }
        )
