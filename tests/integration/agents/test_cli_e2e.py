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


SAMPLED_TASK = 'def add(a, b):\n    """Add.\n    >>> add(2, 3)\n    5\n    """'
WRONG = "```python\ndef add(a, b):\n    return a * b\n```"
RIGHT = "```python\ndef add(a, b):\n    return a + b\n```"


def test_preset_style_sampled_from_flags_tests_candidates_in_the_sandbox(
    llm: ScriptedOpenAI, service: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # coder, coder (resends), then the sampler's first candidate: only it passes add(2, 3) == 5
    llm.script("m", [WRONG, WRONG, RIGHT])
    flags = {"--style": "sampled", "--base-url": llm.url, "--model": "m", "--api-key": "k"}
    flags |= {"--service-url": service[0], "--service-key": service[1]}
    code = main(["run", "--task", SAMPLED_TASK, *(x for pair in flags.items() for x in pair)])
    out = capsys.readouterr().out
    assert code == 0
    assert "sampler" in out
    assert "TESTS PASSED 0/1" in out  # the coder's program, really run in the sandbox
    assert "all 1 tests passed." in out
    sampled = llm.requests[2]
    assert sampled["temperature"] == 0.7
    assert sampled["seed"] == 1
    assert "a * b" not in str(sampled["messages"])  # a candidate is drawn from the task alone


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
