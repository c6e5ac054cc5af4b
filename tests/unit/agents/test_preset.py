"""planner_coder_reviewer with scripted models and executor: the real result decides."""

from __future__ import annotations

from collections.abc import Sequence

from agent_client.executors import CodeResult, ScriptedExecutor
from agent_client.messages import CodeBlock, CodeExecutionEvent, TextMessage
from agent_client.models.base import UserMessage
from agent_client.models.scripted import ScriptedModelClient
from agent_client.teams import planner_coder_reviewer
from agent_client.teams.planner_coder_reviewer import is_approval

BROKEN = "```python\ndef add(a, b):\n    return a - b\nassert add(2, 3) == 5\n```"
FIXED = "```python\ndef add(a, b):\n    return a + b\nassert add(2, 3) == 5\nprint('ok')\n```"


def sandbox(blocks: Sequence[CodeBlock]) -> CodeResult:
    if "a - b" in blocks[0].code:
        return CodeResult(1, "Traceback (most recent call last):\nAssertionError")
    return CodeResult(0, "ok")


async def test_fail_revise_fix_approve() -> None:
    planner = ScriptedModelClient(["1. write add\n2. assert add(2, 3) == 5"])
    coder = ScriptedModelClient([BROKEN, FIXED])
    reviewer = ScriptedModelClient(["REVISE: the assertion failed", "APPROVE"])
    executor = ScriptedExecutor([sandbox, sandbox])
    team = planner_coder_reviewer(
        {"planner": planner, "coder": coder, "reviewer": reviewer}, executor
    )
    result = await team.run("Write add(a, b) and test it.")
    chat = [m for m in result.messages if isinstance(m, TextMessage | CodeExecutionEvent)]
    assert [m.source for m in chat] == [
        "user",
        "planner",
        "coder",
        "executor",
        "reviewer",
        "coder",
        "executor",
        "reviewer",
    ]
    runs = [m for m in chat if isinstance(m, CodeExecutionEvent)]
    assert [r.exit_code for r in runs] == [1, 0]
    assert "AssertionError" in runs[0].output
    assert result.stop_reason == "reviewer approved a run that exited with code 0."
    # The coder's second call saw the real traceback and the reviewer's reasons, labelled.
    seen = [m.content for m in coder.calls[1]["messages"] if isinstance(m, UserMessage)]
    assert any(s.startswith("[executor]: Execution FAILED") and "AssertionError" in s for s in seen)
    assert "[reviewer]: REVISE: the assertion failed" in seen
    assert seen[0] == "[user]: Write add(a, b) and test it."
    assert executor.stops == 1


async def test_approval_without_a_successful_run_does_not_stop() -> None:
    planner = ScriptedModelClient(["plan"])
    coder = ScriptedModelClient([BROKEN, FIXED])
    reviewer = ScriptedModelClient(["APPROVE", "APPROVE"])
    team = planner_coder_reviewer(
        {"planner": planner, "coder": coder, "reviewer": reviewer},
        ScriptedExecutor([sandbox, sandbox]),
    )
    result = await team.run("Write add.")
    reviews = [m for m in result.messages if isinstance(m, TextMessage) and m.source == "reviewer"]
    assert len(reviews) == 2  # the first APPROVE (of a failed run) was not a stop
    assert result.stop_reason is not None
    assert "exited with code 0" in result.stop_reason


async def test_rounds_cap_the_run_when_nothing_passes() -> None:
    coder = ScriptedModelClient([f"```python\nfail({i})\n```" for i in range(5)])
    team = planner_coder_reviewer(
        {
            "planner": ScriptedModelClient(["plan"]),
            "coder": coder,
            "reviewer": ScriptedModelClient(["REVISE"], repeat_last=True),
        },
        ScriptedExecutor([CodeResult(1, "boom")] * 5),
        max_rounds=2,
    )
    result = await team.run("impossible")
    assert result.stop_reason == "Maximum number of messages 8 reached."


async def test_coder_without_code_goes_back_to_the_coder() -> None:
    coder = ScriptedModelClient(["I will think about it.", FIXED])
    team = planner_coder_reviewer(
        {
            "planner": ScriptedModelClient(["plan"]),
            "coder": coder,
            "reviewer": ScriptedModelClient(["APPROVE"]),
        },
        ScriptedExecutor([sandbox]),
    )
    result = await team.run("Write add.")
    chat = [m.source for m in result.messages if isinstance(m, TextMessage | CodeExecutionEvent)]
    assert chat == ["user", "planner", "coder", "executor", "coder", "executor", "reviewer"]


def test_approval_parsing() -> None:
    assert is_approval("APPROVE")
    assert is_approval("**APPROVE** looks right")
    assert is_approval("Checked the output.\nAPPROVE")
    assert not is_approval("I cannot APPROVE this")
    assert not is_approval("REVISE: approve later")
