"""The framework adapters' shared pieces: what the model reads back, and the sandbox launcher."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from agent_client.adapters.code_tool import (
    CodeToolResult,
    RunCodeArgs,
    invalid_arguments_message,
)
from agent_client.errors import ServiceUnavailable, UnknownLanguage
from agent_client.service.models import Execution


def execution(**fields: Any) -> Execution:
    return Execution.model_validate(
        {"id": "ex_1", "language": "python", "created_at": "2026-01-01T00:00:00Z", **fields}
    )


def test_a_finished_run_keeps_its_own_status_and_output() -> None:
    result = CodeToolResult.from_execution(
        execution(
            state="finished",
            result={
                "status": "memory_limit",
                "exit_code": 137,
                "stdout": "partial\n",
                "stderr": "",
                "stdout_truncated": True,
                "wall_time_s": 0.5,
                "message": "killed: out of memory",
            },
        )
    )
    assert result == CodeToolResult(
        status="memory_limit",
        exit_code=137,
        stdout="partial\n",
        truncated=True,
        wall_time_s=0.5,
        message="killed: out of memory",
    )


def test_a_failed_execution_is_not_run_with_the_service_reason() -> None:
    result = CodeToolResult.from_execution(
        execution(state="failed", error={"code": "sandbox_error", "message": "engine gone"})
    )
    assert (result.status, result.error_code, result.message) == (
        "not_run",
        "sandbox_error",
        "engine gone",
    )
    assert result.exit_code is None


def test_refusals_carry_the_service_code() -> None:
    refused = CodeToolResult.refused(UnknownLanguage("policy runs python, not cobol"))
    unreachable = CodeToolResult.refused(ServiceUnavailable("connection refused"))
    assert (refused.error_code, refused.message) == (
        "unknown_language",
        "policy runs python, not cobol",
    )
    assert unreachable.error_code == "service_unavailable"


def test_invalid_arguments_say_what_is_wrong_and_show_a_call_that_fits() -> None:
    with pytest.raises(ValidationError) as raised:
        RunCodeArgs.model_validate({"code": "", "lang": "python"})
    message = invalid_arguments_message("run_code", raised.value)
    assert message.startswith("Invalid arguments for run_code: code: String should have at least")
    assert "lang: Extra inputs are not permitted" in message
    assert '{"code": "print(6 * 7)", "language": null}' in message


@pytest.mark.parametrize("language", ["python", "bash"])
def test_the_sandbox_launcher_runs_argv_verbatim_with_the_environment(language: str) -> None:
    pytest.importorskip("agents")
    from agent_client.adapters.openai_agents_sandbox import _program

    argv = ["sh", "-c", 'printf "%s|%s" "$1" "$GREETING"; exit 3', "sh", 'it\'s "odd" $HOME']
    code = _program(language, argv, {"GREETING": "a 'b' c"})
    runner = [sys.executable, "-c", code] if language == "python" else ["bash", "-c", code]

    done = subprocess.run(runner, capture_output=True, text=True, check=False)

    assert (done.stdout, done.returncode) == ("it's \"odd\" $HOME|a 'b' c", 3)
