"""An agent team on an interpreter session: a later cell builds on an earlier one's variables,
and what a cell displays (a plot) reaches the model as text."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent_client.agents import AssistantAgent, CodeExecutorAgent
from agent_client.conditions import MaxMessageTermination
from agent_client.executors import RemoteExecutor
from agent_client.messages import CodeBlock, CodeExecutionEvent
from agent_client.models import OpenAIModelClient
from agent_client.service import ExecutionClient
from agent_client.teams import SelectorGroupChat
from tests.support.scripted_openai import ScriptedOpenAI

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.redis]


@pytest.fixture
async def sandbox(service: tuple[str, str]) -> AsyncIterator[ExecutionClient]:
    base_url, api_key = service
    async with ExecutionClient(base_url, api_key, poll_interval_s=0.1) as client:
        yield client


async def test_a_team_on_an_interpreter_session_builds_on_its_earlier_cell(
    llm: ScriptedOpenAI, sandbox: ExecutionClient
) -> None:
    analyst = AssistantAgent(
        "analyst",
        OpenAIModelClient(
            model="analyst", base_url=llm.url, api_key="k", max_retries=0, timeout_s=30
        ),
    )
    llm.script(
        "analyst",
        [
            "```python\nimport pandas as pd\nframe = pd.DataFrame({'y': [1, 2, 3]})\n```",
            "```python\nprint('total', frame['y'].sum())\nframe.plot()\n```",
            "The sum is 6 and the plot is drawn.",
        ],
    )
    executor = RemoteExecutor(sandbox, interpreter=True)
    team = SelectorGroupChat(
        [analyst, CodeExecutorAgent("executor", executor)],
        selector_func=lambda thread: "executor" if thread[-1].source == "analyst" else "analyst",
        termination_condition=MaxMessageTermination(6),
    )
    result = await team.run("load the data, then sum and plot it")
    runs = [m for m in result.messages if isinstance(m, CodeExecutionEvent)]
    assert [r.exit_code for r in runs] == [0, 0]
    assert "total 6" in runs[1].output
    assert "[an image was produced: PNG" in runs[1].output
    # The model saw the second cell's output, image note included, in its next request.
    assert "an image was produced" in str(llm.requests_for("analyst")[-1]["messages"])
    assert executor.session_ids == {}


async def test_the_autogen_adapter_offers_an_interpreter(sandbox: ExecutionClient) -> None:
    pytest.importorskip("autogen_core")
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock as AutogenCodeBlock

    from agent_client.adapters.autogen import SandboxCodeExecutor

    async with SandboxCodeExecutor(sandbox, interpreter=True) as executor:
        token = CancellationToken()
        first = await executor.execute_code_blocks(
            [AutogenCodeBlock(code="answer = 6 * 7", language="python")], token
        )
        assert first.exit_code == 0, first.output
        second = await executor.execute_code_blocks(
            [AutogenCodeBlock(code="print(answer)", language="python")], token
        )
        assert second.exit_code == 0, second.output
        assert second.output.strip() == "42"


async def test_a_plain_executor_does_not_keep_variables(sandbox: ExecutionClient) -> None:
    async with RemoteExecutor(sandbox) as executor:
        await executor.execute_code_blocks([CodeBlock(code="answer = 42", language="python")])
        later = await executor.execute_code_blocks(
            [CodeBlock(code="print(answer)", language="python")]
        )
    assert later.exit_code != 0
    assert "NameError" in later.output


async def test_an_interpreter_executor_runs_other_languages_in_a_plain_session(
    sandbox: ExecutionClient,
) -> None:
    async with RemoteExecutor(sandbox, interpreter=True) as executor:
        cell = await executor.execute_code_blocks([CodeBlock(code="n = 6", language="python")])
        shell = await executor.execute_code_blocks(
            [CodeBlock(code="echo $((6 * 7))", language="bash")]
        )
        again = await executor.execute_code_blocks(
            [CodeBlock(code="print(n * 7)", language="python")]
        )
        opened = executor.session_ids
    assert (cell.exit_code, shell.exit_code, again.exit_code) == (0, 0, 0), shell.output
    assert shell.output.strip() == "42"
    assert again.output.strip() == "42"  # the bash block did not disturb the kernel
    assert set(opened) == {"python", "bash"}
