"""CodeExecutorAgent: real results as messages, repeats detected, failures never raised."""

from __future__ import annotations

from agent_client.agents import CodeExecutorAgent
from agent_client.errors import ServiceUnavailable
from agent_client.executors import CodeResult, ScriptedExecutor
from agent_client.messages import CodeBlock, CodeExecutionEvent, CodeGenerationEvent, TextMessage

CODE = "Here:\n```python\nprint(1/0)\n```"


async def test_runs_the_latest_code_and_reports_exit_code_and_output() -> None:
    executor = ScriptedExecutor([CodeResult(1, "ZeroDivisionError: division by zero")])
    agent = CodeExecutorAgent("executor", executor)
    items = [i async for i in agent.on_messages_stream([TextMessage(source="coder", content=CODE)])]
    assert isinstance(items[0], CodeGenerationEvent)
    assert items[0].author == "coder"
    message = items[-1].chat_message  # type: ignore[union-attr]
    assert isinstance(message, CodeExecutionEvent)
    assert message.exit_code == 1
    assert "ZeroDivisionError" in message.to_text()
    assert "FAILED" in message.to_text()
    assert executor.executed == [[CodeBlock(code="print(1/0)\n", language="python")]]


async def test_identical_code_is_not_rerun_and_the_author_is_told() -> None:
    executor = ScriptedExecutor([CodeResult(1, "boom")])
    agent = CodeExecutorAgent("executor", executor)
    await agent.on_messages([TextMessage(source="coder", content=CODE)])
    again = await agent.on_messages([TextMessage(source="coder", content=CODE + "\n")])
    assert isinstance(again.chat_message, CodeExecutionEvent)
    assert "identical to attempt 1" in again.chat_message.to_text()
    assert again.chat_message.exit_code == 1
    assert len(executor.executed) == 1


async def test_no_code_is_a_request_for_code() -> None:
    agent = CodeExecutorAgent("executor", ScriptedExecutor([]))
    response = await agent.on_messages([TextMessage(source="coder", content="I think so.")])
    assert isinstance(response.chat_message, TextMessage)
    assert "```python" in response.chat_message.content


async def test_sources_limit_whose_code_runs() -> None:
    executor = ScriptedExecutor([CodeResult(0, "ok")])
    agent = CodeExecutorAgent("executor", executor, sources=["coder"])
    response = await agent.on_messages(
        [
            TextMessage(source="coder", content=CODE),
            TextMessage(source="reviewer", content="```python\nprint(2)\n```"),
        ]
    )
    assert isinstance(response.chat_message, CodeExecutionEvent)
    assert executor.executed[0][0].code == "print(1/0)\n"


async def test_executor_failure_is_a_message_not_an_exception() -> None:
    def fail(blocks: object) -> CodeResult:
        raise ServiceUnavailable("cannot reach the service")

    agent = CodeExecutorAgent("executor", ScriptedExecutor([fail]))
    response = await agent.on_messages([TextMessage(source="coder", content=CODE)])
    assert isinstance(response.chat_message, CodeExecutionEvent)
    assert response.chat_message.exit_code == 1
    assert "cannot reach the service" in response.chat_message.output


async def test_best_attempt_is_the_newest_clean_run() -> None:
    executor = ScriptedExecutor([CodeResult(0, "v1 ok"), CodeResult(1, "v2 broke")])
    agent = CodeExecutorAgent("executor", executor)
    await agent.on_messages([TextMessage(source="coder", content="```python\nv1()\n```")])
    await agent.on_messages([TextMessage(source="coder", content="```python\nv2()\n```")])
    best = agent.best_attempt
    assert best is not None
    assert best.number == 1
    assert best.output == "v1 ok"
