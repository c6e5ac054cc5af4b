"""AutoGen users get the same verification: SandboxCodeExecutor(tests=..., blocks="program")."""

from __future__ import annotations

import pytest

pytest.importorskip("autogen_agentchat")

from autogen_core import CancellationToken as AutogenCancellationToken
from autogen_core.code_executor import CodeBlock as AutogenCodeBlock

from agent_client.adapters.autogen import SandboxCodeExecutor
from agent_client.service import ExecutionClient
from tests.unit.agents.fake_service import KEY, FakeService

EXAMPLE = AutogenCodeBlock(code="add(1, 2)", language="python")
PROGRAM = AutogenCodeBlock(code="def add(a, b):\n    return a + b\n", language="python")


def client_for(service: FakeService) -> ExecutionClient:
    return ExecutionClient(
        "http://sandbox.test", KEY, transport=service.transport(), poll_interval_s=0
    )


def submitted(service: FakeService) -> list[str]:
    return [b["code"] for m, p, b in service.requests if (m, p) == ("POST", "/v1/executions")]


async def test_program_choice_skips_a_leading_example_and_says_so() -> None:
    service = FakeService()
    async with (
        client_for(service) as client,
        SandboxCodeExecutor(client, blocks="program") as executor,
    ):
        result = await executor.execute_code_blocks([EXAMPLE, PROGRAM], AutogenCancellationToken())
    assert submitted(service) == [PROGRAM.code]
    assert result.output.startswith("Ran block 2 of 2 (the complete program).")


async def test_tests_run_against_the_program_in_the_sandbox() -> None:
    # The fake service answers what the harness prints; the real harness runs in tests of the
    # team against the real service.
    service = FakeService(
        outcomes={"TESTS PASSED": {"stdout": "TESTS PASSED 0/1\n", "exit_code": 1}}
    )
    async with (
        client_for(service) as client,
        SandboxCodeExecutor(client, tests="assert add(2, 3) == 5") as executor,
    ):
        result = await executor.execute_code_blocks([EXAMPLE, PROGRAM], AutogenCancellationToken())
    (code,) = submitted(service)
    assert "return a + b" in code
    assert "'assert add(2, 3) == 5'" in code
    assert result.exit_code == 1
    assert "TESTS PASSED 0/1" in result.output


def test_tests_without_an_assert_are_refused() -> None:
    with pytest.raises(ValueError, match="no assert"):
        SandboxCodeExecutor(ExecutionClient("http://sandbox.test", KEY), tests="print(1)")
