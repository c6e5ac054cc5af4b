"""Termination conditions, alone and composed."""

from __future__ import annotations

import pytest

from agent_client.conditions import (
    ExternalTermination,
    HandoffTermination,
    MaxMessageTermination,
    SourceMatchTermination,
    StopMessageTermination,
    TextMentionTermination,
    TimeoutTermination,
    TokenUsageTermination,
)
from agent_client.messages import (
    HandoffMessage,
    RequestUsage,
    StopMessage,
    TextMessage,
    ToolCallRequestEvent,
)


def text(source: str, content: str, *, task: bool = False) -> TextMessage:
    return TextMessage(source=source, content=content, metadata={"role": "task"} if task else {})


async def test_max_messages_counts_chat_messages_not_events() -> None:
    condition = MaxMessageTermination(3)
    assert await condition([text("user", "go", task=True)]) is None
    assert await condition([ToolCallRequestEvent(source="a", content=[]), text("a", "1")]) is None
    stop = await condition([text("b", "2")])
    assert stop is not None
    assert "3" in stop.content
    assert condition.terminated
    await condition.reset()
    assert not condition.terminated
    assert await condition([text("a", "x")]) is None


async def test_text_mention_ignores_the_task_and_its_echo() -> None:
    condition = TextMentionTermination("TERMINATE")
    task = "Write fizzbuzz and say TERMINATE when done"
    assert await condition([text("user", task, task=True)]) is None
    assert await condition([text("coder", f"Restating: {task}")]) is None
    stop = await condition([text("coder", "All done. TERMINATE")])
    assert stop is not None
    assert "coder" in stop.content


async def test_text_mention_only_from_given_sources() -> None:
    condition = TextMentionTermination("APPROVE", sources=["reviewer"])
    assert await condition([text("coder", "please APPROVE")]) is None
    assert await condition([text("reviewer", "APPROVE")]) is not None


async def test_or_fires_on_either_and_reports_the_reason() -> None:
    condition = MaxMessageTermination(10) | TextMentionTermination("STOP")
    assert await condition([text("a", "hello")]) is None
    stop = await condition([text("a", "STOP now")])
    assert stop is not None
    assert "STOP" in stop.content


async def test_and_waits_for_both_across_batches() -> None:
    condition = TextMentionTermination("A") & TextMentionTermination("B")
    assert await condition([text("x", "A")]) is None
    assert not condition.terminated
    stop = await condition([text("y", "B")])
    assert stop is not None
    assert " and " in stop.content
    await condition.reset()
    assert await condition([text("y", "B")]) is None


async def test_handoff_source_stop_and_external() -> None:
    handoff = HandoffTermination("user")
    assert await handoff([HandoffMessage(source="a", content="", target="b")]) is None
    assert await handoff([HandoffMessage(source="a", content="", target="user")]) is not None

    source = SourceMatchTermination(["critic"])
    assert await source([text("critic", "task", task=True)]) is None
    assert await source([text("critic", "done")]) is not None

    stop_msg = StopMessageTermination()
    assert await stop_msg([StopMessage(source="a", content="bye")]) is not None

    external = ExternalTermination()
    assert await external([text("a", "x")]) is None
    external.set()
    assert await external([]) is not None


async def test_token_usage_sums_reported_usage() -> None:
    condition = TokenUsageTermination(max_total_token=30)
    usage = RequestUsage(prompt_tokens=10, completion_tokens=5)
    assert await condition([TextMessage(source="a", content="", models_usage=usage)]) is None
    stop = await condition([TextMessage(source="a", content="", models_usage=usage)])
    assert stop is not None
    assert "30" in stop.content


async def test_timeout_zero_fires_at_first_check() -> None:
    condition = TimeoutTermination(0)
    assert await condition([]) is not None


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MaxMessageTermination(0)
    with pytest.raises(ValueError, match="token limit"):
        TokenUsageTermination()
