"""`agent-client run` end to end: the preset from flags, and a team from a spec file."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_client.cli import main
from tests.support.scripted_openai import ScriptedOpenAI

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.redis]

PROGRAM = "```python\nassert sum([1, 2, 3]) == 6\nprint('sum ok')\n```"


def test_preset_from_flags_streams_the_run(
    llm: ScriptedOpenAI, service: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # One model plays every role, so replies come in speaking order: planner, coder, reviewer.
    llm.script("m", ["1. sum the list\n2. assert 6", PROGRAM, "APPROVE"])
    code = main(
        [
            "run",
            "--task",
            "Sum [1, 2, 3] and check it.",
            "--base-url",
            llm.url,
            "--model",
            "m",
            "--api-key",
            "k",
            "--service-url",
            service[0],
            "--service-key",
            service[1],
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    for expected in ("planner", "coder", "exit code 0", "sum ok", "APPROVE", "exited with code 0"):
        assert expected in out


def test_spec_file_reads_keys_from_the_named_env_vars(
    llm: ScriptedOpenAI,
    service: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    llm.script("writer", [PROGRAM])
    spec = tmp_path / "team.yaml"
    spec.write_text(
        f"""
version: 1
models:
  local: {{base_url: "{llm.url}", model: writer, api_key_env: TEST_MODEL_KEY}}
agents:
  - {{type: assistant, name: writer, model: local}}
  - {{type: code_executor, name: executor}}
team: {{type: round_robin}}
termination: {{max_messages: 3}}
executor: {{service_url: "{service[0]}", api_key_env: TEST_SANDBOX_KEY}}
"""
    )
    monkeypatch.setenv("TEST_MODEL_KEY", "k")
    monkeypatch.setenv("TEST_SANDBOX_KEY", service[1])
    assert main(["run", str(spec), "--task", "sum"]) == 0
    out = capsys.readouterr().out
    assert "sum ok" in out
    assert "Maximum number of messages 3 reached." in out
