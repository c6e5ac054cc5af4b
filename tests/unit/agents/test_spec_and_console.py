"""Team specs (schema file current, validation, building), the CLI's schema, and the console."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from agent_client.agents import AssistantAgent, CodeExecutorAgent
from agent_client.cli import main
from agent_client.conditions import MaxMessageTermination
from agent_client.console import console
from agent_client.errors import SpecError
from agent_client.executors import CodeResult, ScriptedExecutor
from agent_client.models.scripted import ScriptedModelClient
from agent_client.spec import TeamSpec, load_spec, team_spec_schema
from agent_client.team_builder import import_tool, open_team
from agent_client.teams import RoundRobinGroupChat, SelectorGroupChat, planner_coder_reviewer

SCHEMA_FILE = Path(__file__).parents[3] / "agent_client" / "schema" / "team-spec.schema.json"

SPEC = """
version: 1
models:
  local: {base_url: "http://127.0.0.1:9/v1", model: qwen, api_key_env: MODEL_KEY}
agents:
  - {type: assistant, name: writer, model: local, tools: ["tests.unit.agents.test_tools:add"]}
  - {type: code_executor, name: executor}
team: {type: selector, model: local}
termination: {max_messages: 6, text_mention: DONE}
executor: {service_url: "http://127.0.0.1:9", api_key_env: SANDBOX_KEY}
"""


def test_committed_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text() == team_spec_schema(), "run: agent-client schema > " + str(
        SCHEMA_FILE
    )


def test_cli_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "TeamSpec"


async def test_spec_builds_the_team_it_describes(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(SPEC)
    spec = load_spec(path)
    async with open_team(spec, env={"MODEL_KEY": "k", "SANDBOX_KEY": "s"}) as team:
        assert isinstance(team, SelectorGroupChat)
        assert [p.name for p in team.participants] == ["writer", "executor"]


async def test_missing_env_var_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(SPEC)
    with pytest.raises(SpecError, match="MODEL_KEY"):
        async with open_team(load_spec(path), env={"SANDBOX_KEY": "s"}):
            pass


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("team: [", "not valid YAML"),
        ("models: {}\nteam: {type: round_robin}\nagents: [{type: robot, name: x}]", "agents.0"),
        (
            "models: {m: {base_url: u, model: m}}\nteam: {type: round_robin}\n"
            "agents: [{type: assistant, name: a, model: nope}]",
            "unknown model 'nope'",
        ),
        (
            "models: {m: {base_url: u, model: m}}\nteam: {type: round_robin}\n"
            "agents: [{type: code_executor, name: e}]\ntermination: {max_messages: 3}",
            "give an `executor`",
        ),
        (
            "models: {m: {base_url: u, model: m}}\nteam: {type: round_robin}\n"
            "agents: [{type: assistant, name: a, model: m}]",
            "termination",
        ),
    ],
)
def test_invalid_specs_name_the_problem(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=fragment.replace("[", r"\[").replace("`", "`")):
        load_spec(path)


def test_preset_spec_validates() -> None:
    spec = TeamSpec.model_validate(
        {
            "models": {"m": {"base_url": "u", "model": "m"}},
            "team": {"type": "planner_coder_reviewer", "model": "m", "max_rounds": 2},
            "executor": {"service_url": "http://x", "api_key_env": "K"},
        }
    )
    assert spec.team.max_rounds == 2


def test_tool_import_paths() -> None:
    assert import_tool("tests.unit.agents.test_tools:add")(1, 2) == 3
    assert import_tool("tests.unit.agents.test_tools.add")(1, 1) == 2
    with pytest.raises(SpecError, match="cannot import"):
        import_tool("no_such_module:f")
    with pytest.raises(SpecError, match="not a function"):
        import_tool("tests.unit.agents.test_tools:SPEC_MISSING")


async def test_console_shows_speakers_code_results_and_the_stop_reason() -> None:
    buffer = io.StringIO()
    out = Console(file=buffer, width=100, color_system=None)
    team = RoundRobinGroupChat(
        [
            AssistantAgent("coder", ScriptedModelClient(["```python\nprint(1/0)\n```"])),
            CodeExecutorAgent("executor", ScriptedExecutor([CodeResult(1, "ZeroDivisionError")])),
        ],
        termination_condition=MaxMessageTermination(3),
    )
    result = await console(team.run_stream("divide"), output=out)
    text = buffer.getvalue()
    assert result.stop_reason == "Maximum number of messages 3 reached."
    for expected in (
        "coder",
        "print(1/0)",
        "exit code 1",
        "ZeroDivisionError",
        "15 tokens",
        "stopped",
    ):
        assert expected in text


def test_preset_accepts_one_client_for_all_roles() -> None:
    team = planner_coder_reviewer(ScriptedModelClient([]), ScriptedExecutor([]), max_rounds=1)
    assert [p.name for p in team.participants] == ["planner", "coder", "executor", "reviewer"]


def test_cli_without_spec_needs_the_preset_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--task", "x", "--service-key", "k"]) == 2
    out = capsys.readouterr().out
    assert "--model-url" in out  # --base-url is its older name
    assert "--model," in out or out.rstrip().endswith("--model")
    assert "--service-url" not in out  # defaults to the local service
