"""The studio's spec work: problems at their fields, the round trip team -> spec -> team, the
Python export building the same team, and the gallery."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from agent_client.agents import AssistantAgent, CodeExecutorAgent, UserProxyAgent
from agent_client.executors import CodeResult, ScriptedExecutor
from agent_client.models.scripted import ScriptedModelClient
from agent_client.spec import TeamSpec, spec_problems
from agent_client.studio.gallery import gallery
from agent_client.studio.python_export import python_code
from agent_client.team_builder import open_team, termination_from_spec

SPEC: dict[str, Any] = {
    "version": 1,
    "models": {
        "main": {
            "base_url": "http://127.0.0.1:9/v1",
            "model": "local",
            "api_key_env": "STUDIO_MAIN_KEY",
        }
    },
    "agents": [
        {
            "type": "assistant",
            "name": "analyst",
            "model": "main",
            "system_message": "Write Python.",
            "tools": ["add"],
        },
        {"type": "code_executor", "name": "executor", "sources": ["analyst"]},
        {"type": "user_proxy", "name": "human"},
    ],
    "team": {"type": "selector", "model": "main"},
    "termination": {
        "type": "or",
        "conditions": [
            {
                "type": "and",
                "conditions": [
                    {"type": "text_mention", "text": "DONE"},
                    {"type": "max_messages", "max_messages": 4},
                ],
            },
            {"type": "timeout", "timeout_s": 60},
        ],
    },
    "executor": {"service_url": "http://127.0.0.1:9", "api_key_env": "STUDIO_SANDBOX_KEY"},
}
ENV = {"STUDIO_MAIN_KEY": "k", "STUDIO_SANDBOX_KEY": "s"}


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def shape(team: Any) -> list[tuple[str, str, str]]:
    return [(type(p).__name__, p.name, p.description) for p in team.participants]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {**SPEC, "agents": [{**SPEC["agents"][0], "name": "1bad"}, *SPEC["agents"][1:]]},
            {"agents.0.name"},
        ),
        ({**SPEC, "agents": [{"type": "robot", "name": "r"}]}, {"agents.0.type"}),
        ({**SPEC, "agents": [{**SPEC["agents"][0], "model": "nope"}]}, {"agents.0.model"}),
        ({**SPEC, "executor": None}, {"executor"}),
        ({**SPEC, "team": {"type": "selector"}}, {"team.model"}),
        (
            {
                **SPEC,
                "termination": {
                    "type": "or",
                    "conditions": [
                        {"type": "max_messages", "max_messages": 0},
                        {"type": "and", "conditions": [{"type": "text_mention"}, {"type": "x"}]},
                    ],
                },
            },
            {
                "termination.conditions.0.max_messages",
                "termination.conditions.1.conditions.0.text",
                "termination.conditions.1.conditions.1.type",
            },
        ),
        ({**SPEC, "termination": {"max_messages": 0}}, {"termination.max_messages"}),
        ({**SPEC, "termination": None, "team": {"type": "round_robin"}}, {"termination"}),
    ],
)
def test_problems_point_at_the_field(raw: dict[str, Any], expected: set[str]) -> None:
    spec, problems = spec_problems(raw)
    assert spec is None
    assert {p.path for p in problems} == expected


def test_a_valid_spec_has_no_problems() -> None:
    spec, problems = spec_problems(SPEC)
    assert problems == []
    assert spec is not None


async def test_round_trip_team_spec_team() -> None:
    spec = TeamSpec.model_validate(SPEC)
    async with open_team(spec, env=ENV, tools={"add": add}) as team:
        first = shape(team)
    # spec -> text (what the page exports) -> spec: the same spec, so the same team again
    text = yaml.safe_dump(spec.model_dump(mode="json", exclude_defaults=True))
    again = TeamSpec.model_validate(yaml.safe_load(text))
    assert again == spec
    async with open_team(again, env=ENV, tools={"add": add}) as team:
        assert shape(team) == first
    assert [t for t, _, _ in first] == ["AssistantAgent", "CodeExecutorAgent", "UserProxyAgent"]
    condition = termination_from_spec(again.termination)
    assert condition is not None
    assert condition.to_spec() == spec.termination


async def test_python_export_builds_the_same_team() -> None:
    spec = TeamSpec.model_validate(SPEC)
    code = python_code(spec, {"add": add})
    compile(code, "team.py", "exec")
    namespace: dict[str, Any] = {"__name__": "exported"}
    exec(code, namespace)  # noqa: S102 - the program under test, generated from our own spec
    models = {"main": ScriptedModelClient(["hi"])}
    exported = namespace["build_team"](models, ScriptedExecutor([CodeResult(0, "")]))
    async with open_team(spec, env=ENV, tools={"add": add}) as team:
        assert shape(exported) == shape(team)
    assert namespace["termination"]().to_spec() == spec.termination
    assert "os.environ['STUDIO_MAIN_KEY']" in code  # keys come from the environment, by name
    assert isinstance(exported.participants[0], AssistantAgent)
    assert isinstance(exported.participants[1], CodeExecutorAgent)
    assert isinstance(exported.participants[2], UserProxyAgent)


def test_python_export_of_the_preset() -> None:
    entry = next(g for g in gallery() if g.id == "planner-coder-reviewer")
    code = python_code(entry.spec)
    namespace: dict[str, Any] = {"__name__": "exported"}
    exec(code, namespace)  # noqa: S102 - generated from a shipped spec
    team = namespace["build_team"](
        {"main": ScriptedModelClient(["x"])}, ScriptedExecutor([CodeResult(0, "")])
    )
    assert [p.name for p in team.participants] == ["planner", "coder", "executor", "reviewer"]


async def test_python_export_of_the_sampled_preset_builds_the_same_team() -> None:
    entry = next(g for g in gallery() if g.id == "planner-coder-reviewer")
    spec = entry.spec.model_copy(
        update={"team": entry.spec.team.model_copy(update={"style": "sampled", "max_rounds": 3})}
    )
    namespace: dict[str, Any] = {"__name__": "exported"}
    exec(python_code(spec), namespace)  # noqa: S102 - generated from a shipped spec
    exported = namespace["build_team"](
        {"main": ScriptedModelClient(["x"])}, ScriptedExecutor([CodeResult(0, "")])
    )
    assert [p.name for p in exported.participants] == ["coder", "sampler", "executor"]
    env = {m.api_key_env: "k" for m in spec.models.values() if m.api_key_env}
    if spec.executor is not None and spec.executor.api_key_env:
        env[spec.executor.api_key_env] = "k"
    async with open_team(spec, env=env) as team:
        assert shape(exported) == shape(team)


def test_every_gallery_spec_is_valid_and_distinct() -> None:
    entries = gallery()
    assert len(entries) >= 4
    assert len({e.spec.team.type for e in entries}) == 4  # every team type has an example
    for entry in entries:
        _, problems = spec_problems(entry.spec.model_dump(mode="json"))
        assert problems == [], entry.id
