"""The tested preset: a tester's asserts, run against each program, decide; the best attempt stays.

The scripted sandbox answers what the harness would print for each program, after checking the
harness really carries the program and the tests: it never runs generated code on this host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from agent_client.executors import CodeResult, ScriptedExecutor
from agent_client.messages import CodeBlock, CodeExecutionEvent, TextMessage
from agent_client.models.scripted import ScriptedModelClient
from agent_client.teams import planner_coder_reviewer
from agent_client.teams.planner_coder_reviewer import PlannerCoderReviewer
from agent_client.teams.verification import (
    TestRunnerAgent,
    TestSuite,
    example_tests,
    harness,
    parse_tests,
)

TESTS = "```python\nassert add(2, 3) == 5\nassert add(0, 0) == 0\n```"
WRONG = "```python\ndef add(a, b):\n    return a * b\n```"  # passes add(0, 0) only
RIGHT = "```python\ndef add(a, b):\n    return a + b\n```"
WORSE = "```python\ndef add(a, b):\n    return 1\n```"  # passes none


def sandbox(blocks: Sequence[CodeBlock]) -> CodeResult:
    code = blocks[0].code
    assert "add(2, 3) == 5" in code  # the harness, with the tests
    assert "TESTS PASSED" in code
    if "a * b" in code:
        return CodeResult(
            1,
            "TEST 1 FAILED: assert add(2, 3) == 5 (left side gave 6)\n"
            "TEST 2 passed: assert add(0, 0) == 0\nTESTS PASSED 1/2",
        )
    if "a + b" in code:
        return CodeResult(0, "TEST 1 passed\nTEST 2 passed\nTESTS PASSED 2/2")
    return CodeResult(1, "TEST 1 FAILED\nTEST 2 FAILED\nTESTS PASSED 0/2")


async def test_approval_needs_the_testers_tests_to_pass() -> None:
    coder = ScriptedModelClient([WRONG, RIGHT])
    reviewer = ScriptedModelClient(["REVISE: test 1 gave 6 instead of 5, add instead of multiply"])
    team = planner_coder_reviewer(
        {"coder": coder, "tester": ScriptedModelClient([TESTS]), "reviewer": reviewer},
        ScriptedExecutor([sandbox, sandbox]),
        tester=True,
        planner=False,
    )
    result = await team.run("Write add(a, b).")
    sources = [m.source for m in result.messages if m.type in ("TextMessage", "CodeExecutionEvent")]
    assert sources == ["user", "tester", "coder", "executor", "reviewer", "coder", "executor"]
    runs = [m for m in result.messages if isinstance(m, CodeExecutionEvent)]
    assert [r.metadata["tests_passed"] for r in runs] == ["1", "2"]
    assert [r.metadata["verified"] for r in runs] == ["false", "true"]
    assert result.stop_reason == "all 2 tests passed."
    assert team.verified
    assert team.answer is not None
    assert "a + b" in team.answer
    # The coder wrote its first program without the tests; later it sees only what they did.
    first = " ".join(m.content for m in coder.calls[0]["messages"])
    assert "add(0, 0)" not in first
    later = " ".join(m.content for m in coder.calls[1]["messages"])
    assert "[tester]" not in later
    assert "TEST 1 FAILED: assert add(2, 3) == 5 (left side gave 6)" in later


async def test_exit_code_zero_without_tests_is_not_verified() -> None:
    team = planner_coder_reviewer(
        {
            "coder": ScriptedModelClient([RIGHT]),
            "tester": ScriptedModelClient(["It should add.", "It adds two numbers."]),
            "reviewer": ScriptedModelClient(["APPROVE"]),
        },
        ScriptedExecutor([CodeResult(0, "")]),
        tester=True,
        planner=False,
    )
    result = await team.run("Write add(a, b).")
    assert not team.verified
    run = next(m for m in result.messages if isinstance(m, CodeExecutionEvent))
    assert run.metadata["tests_total"] == "0"
    assert "verifies nothing" in run.output
    assert result.stop_reason == "the program ran clean, but no tests exist to verify it."


async def test_the_best_attempt_is_kept_not_the_last() -> None:
    team = planner_coder_reviewer(
        {
            "coder": ScriptedModelClient([WRONG, WORSE]),
            "tester": ScriptedModelClient([TESTS]),
            "reviewer": ScriptedModelClient(["REVISE: test 1 failed, it multiplies"] * 2),
        },
        ScriptedExecutor([sandbox, sandbox]),
        tester=True,
        planner=False,
        max_rounds=2,
    )
    result = await team.run("Write add(a, b).")
    assert result.stop_reason == "2 programs tested; the best attempt stands."
    assert team.answer is not None
    assert "a * b" in team.answer  # 1 of 2 beats 0 of 2
    assert not team.verified


async def test_identical_resubmissions_skip_review_and_end_the_run() -> None:
    reviewer = ScriptedModelClient(["REVISE: test 1 failed with 6, it multiplies"])
    team = planner_coder_reviewer(
        {
            "coder": ScriptedModelClient([WRONG], repeat_last=True),
            "tester": ScriptedModelClient([TESTS]),
            "reviewer": reviewer,
        },
        ScriptedExecutor([sandbox]),
        tester=True,
        planner=False,
    )
    result = await team.run("Write add(a, b).")
    assert result.stop_reason == "the coder resent an identical program twice in a row."
    assert len(reviewer.calls) == 1  # no review of a resubmission
    runs = [m for m in result.messages if isinstance(m, CodeExecutionEvent)]
    assert [r.metadata.get("repeat") for r in runs] == [None, "1", "1"]


async def test_example_tests_come_from_the_task_without_a_tester() -> None:
    task = (
        'def add(a, b):\n    """Add.\n    >>> add(2, 3)\n    5\n    >>> add(0, 0)\n    0\n    """'
    )
    team = planner_coder_reviewer(
        {"coder": ScriptedModelClient([RIGHT]), "reviewer": ScriptedModelClient([])},
        ScriptedExecutor([sandbox]),
        example_tests=True,
        planner=False,
    )
    result = await team.run(task)
    assert result.stop_reason == "all 2 tests passed."
    assert team.verified


def test_example_tests_read_doctests_and_stated_results() -> None:
    suite = example_tests(
        "    >>> f([1, 2])\n    [2, 1]\n    >>> g('a')\n    'A'\n"
        "    Examples:\n    h(3) ➞ 9\n    k(1) == True\n    def f(x) -> int:\n"
    )
    assert suite is not None
    assert [c for c, _ in suite.checks] == [
        "assert f([1, 2]) == [2, 1]",
        "assert g('a') == 'A'",
        "assert h(3) == 9",
        "assert k(1) == True",
    ]
    assert example_tests("no examples here") is None


def test_asserts_inside_a_test_function_count_and_a_redefined_function_is_dropped() -> None:
    suite = parse_tests(
        "```python\nfrom math import isclose\ndef add(a, b):\n    return 0\n\n"
        "def test_add():\n    assert add(1, 1) == 2\n\nassert isclose(add(0.1, 0.2), 0.3)\n```"
    )
    assert suite == TestSuite(
        setup="from math import isclose",
        checks=(
            ("assert add(1, 1) == 2", "add(1, 1)"),
            ("assert isclose(add(0.1, 0.2), 0.3)", None),
        ),
    )


def test_the_harness_carries_program_and_each_check() -> None:
    suite = parse_tests(TESTS)
    assert suite is not None
    code = harness("def add(a, b):\n    return a + b\n", suite)
    compile(code, "harness.py", "exec")  # valid Python, never run here
    assert "'assert add(2, 3) == 5'" in code
    assert "return a + b" in code


async def test_runner_state_round_trips() -> None:
    runner = TestRunnerAgent("executor", ScriptedExecutor([sandbox]))

    await runner.on_messages(
        [TextMessage(source="tester", content=TESTS), TextMessage(source="coder", content=WRONG)]
    )
    state = await runner.save_state()
    copy = TestRunnerAgent("executor", ScriptedExecutor([]))
    await copy.load_state(state)
    assert copy.tests == runner.tests
    assert copy.best_attempt == runner.best_attempt


async def test_without_a_reviewer_the_failed_tests_go_straight_back_to_the_coder() -> None:
    task = (
        'def add(a, b):\n    """Add.\n    >>> add(2, 3)\n    5\n    >>> add(0, 0)\n    0\n    """'
    )
    coder = ScriptedModelClient([WRONG, WRONG])
    team = planner_coder_reviewer(
        coder,
        ScriptedExecutor([sandbox]),
        example_tests=True,
        planner=False,
        reviewer=False,
        max_repeats=1,
    )
    result = await team.run(task)
    sources = [m.source for m in result.messages if m.type in ("TextMessage", "CodeExecutionEvent")]
    assert sources == ["user", "coder", "executor", "coder", "executor"]
    assert "left side gave 6" in coder.calls[1]["messages"][-1].content
    assert result.stop_reason == "the coder resent an identical program 1 time(s)."


ADD_TASK = (
    'def add(a, b):\n    """Add.\n    >>> add(2, 3)\n    5\n    >>> add(0, 0)\n    0\n    """'
)


def sampling_team(
    coder: ScriptedModelClient, sampler: ScriptedModelClient, runs: int, **options: Any
) -> PlannerCoderReviewer:
    """The task's examples as tests, no planner or reviewer, three candidates at the most."""
    return planner_coder_reviewer(
        {"coder": coder, "sampler": sampler},
        ScriptedExecutor([sandbox] * runs),
        example_tests=True,
        planner=False,
        reviewer=False,
        candidates=3,
        **options,
    )


async def test_after_the_coders_rounds_fresh_candidates_are_sampled_and_tested() -> None:
    coder = ScriptedModelClient([WRONG, WRONG])
    sampler = ScriptedModelClient([WORSE, RIGHT])
    team = sampling_team(
        coder, sampler, 3, max_rounds=2, candidate_temperature=0.8, candidate_seed=7
    )
    result = await team.run(ADD_TASK)
    sources = [m.source for m in result.messages if m.type in ("TextMessage", "CodeExecutionEvent")]
    # the coder's resent program hands over to the sampler, not to the end of the run
    assert sources == [
        "user", "coder", "executor", "coder", "executor", "sampler", "executor", "sampler",
        "executor",
    ]  # fmt: skip
    runs = [m for m in result.messages if isinstance(m, CodeExecutionEvent)]
    assert [r.metadata["author"] for r in runs] == ["coder", "coder", "sampler", "sampler"]
    assert result.stop_reason == "all 2 tests passed."
    assert team.verified
    assert team.answer is not None
    assert "a + b" in team.answer
    # each candidate is drawn from the task alone, hot, with its own seed
    assert [c["temperature"] for c in sampler.calls] == [0.8, 0.8]
    assert [c["seed"] for c in sampler.calls] == [7, 8]
    for call in sampler.calls:
        seen = " ".join(m.content for m in call["messages"])
        assert "add(2, 3)" in seen
        assert "a * b" not in seen
        assert "return 1" not in seen
        assert "TESTS PASSED" not in seen
    assert coder.calls[0]["temperature"] is None  # the coder keeps the client's own


async def test_candidates_stop_at_the_budget_with_the_best_attempt() -> None:
    team = sampling_team(
        ScriptedModelClient([WRONG]),
        ScriptedModelClient([WORSE], repeat_last=True),
        2,
        max_rounds=1,
    )
    result = await team.run(ADD_TASK)
    assert result.stop_reason == "4 programs tested; the best attempt stands."
    runs = [m for m in result.messages if isinstance(m, CodeExecutionEvent)]
    assert [r.metadata.get("repeat") for r in runs] == [None, None, "2", "2"]  # not run again
    assert team.answer is not None
    assert "a * b" in team.answer  # 1 of 2 beats 0 of 2
    assert not team.verified


def test_candidates_need_tests_to_choose_by() -> None:
    with pytest.raises(ValueError, match="candidates need tests"):
        planner_coder_reviewer(ScriptedModelClient([]), ScriptedExecutor([]), candidates=2)
