"""The real ``openai`` client, through OpenAIModelClient, against the scripted loopback server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from agent_client.agents import AssistantAgent
from agent_client.errors import ModelError
from agent_client.messages import FunctionCall, FunctionExecutionResult, TextMessage
from agent_client.models import (
    AssistantMessage,
    LLMMessage,
    OpenAIModelClient,
    ToolResultMessage,
    ToolSchema,
    UserMessage,
)
from tests.support.scripted_openai import ScriptedOpenAI, call, fail, scripted_openai

ADD = ToolSchema(
    name="add",
    description="Add two integers.",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    },
)


@pytest.fixture
def llm() -> Iterator[ScriptedOpenAI]:
    with scripted_openai() as server:
        yield server


@pytest.fixture
async def client(llm: ScriptedOpenAI) -> AsyncIterator[OpenAIModelClient]:
    model = OpenAIModelClient(model="m", base_url=llm.url, api_key="k", max_retries=2, timeout_s=10)
    yield model
    await model.close()


async def test_text_answer_with_usage(llm: ScriptedOpenAI, client: OpenAIModelClient) -> None:
    llm.script("m", ["four"])
    result = await client.create([UserMessage(content="2+2?")])
    assert result.content == "four"
    assert result.finish_reason == "stop"
    assert result.usage.prompt_tokens == 1
    assert result.usage.completion_tokens > 0


async def test_sampling_per_call_overrides_the_clients_on_the_wire(llm: ScriptedOpenAI) -> None:
    llm.script("m", ["a", "b"])
    model = OpenAIModelClient(
        model="m", base_url=llm.url, api_key="k", temperature=0.0, max_tokens=64, timeout_s=10
    )
    try:
        await model.create([UserMessage(content="x")])
        await model.create([UserMessage(content="x")], temperature=0.7, seed=3, max_tokens=32)
    finally:
        await model.close()
    plain, sampled = llm.requests
    assert (plain["temperature"], plain["max_tokens"], plain.get("seed")) == (0.0, 64, None)
    assert (sampled["temperature"], sampled["max_tokens"], sampled["seed"]) == (0.7, 32, 3)


async def test_tool_calls_and_forced_choice_on_the_wire(
    llm: ScriptedOpenAI, client: OpenAIModelClient
) -> None:
    llm.script("m", [call("add", {"a": 2, "b": 3})])
    result = await client.create([UserMessage(content="add")], tools=[ADD], tool_choice="add")
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("add", {"a": 2, "b": 3})
    ]
    assert result.finish_reason == "tool_calls"
    sent = llm.requests[0]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert sent["tools"][0]["function"]["name"] == "add"


async def test_assistant_tool_call_history_sends_empty_string_content(
    llm: ScriptedOpenAI, client: OpenAIModelClient
) -> None:
    llm.script("m", ["5"])
    history: list[LLMMessage] = [
        UserMessage(content="add"),
        AssistantMessage(
            content="", tool_calls=[FunctionCall(id="c1", name="add", arguments="{}")]
        ),
        ToolResultMessage(results=[FunctionExecutionResult(call_id="c1", name="add", content="5")]),
    ]
    await client.create(history, tools=[ADD])
    messages = llm.requests[0]["messages"]
    assert messages[1]["content"] == ""  # llama.cpp rejects null here
    assert messages[2] == {"role": "tool", "tool_call_id": "c1", "content": "5"}


async def test_tool_call_left_in_the_text_is_recovered(
    llm: ScriptedOpenAI, client: OpenAIModelClient
) -> None:
    llm.script("m", ['<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 1}}\n</tool_call>'])
    result = await client.create([UserMessage(content="add")], tools=[ADD])
    assert [c.name for c in result.tool_calls] == ["add"]
    assert result.finish_reason == "tool_calls"


async def test_server_errors_are_retried_then_reported(
    llm: ScriptedOpenAI, client: OpenAIModelClient
) -> None:
    llm.script("m", [fail(500), "recovered"])
    assert (await client.create([UserMessage(content="hi")])).content == "recovered"
    llm.script("m", [fail(503), fail(503), fail(503)])
    with pytest.raises(ModelError) as caught:
        await client.create([UserMessage(content="hi")])
    assert caught.value.status_code == 503
    assert len(llm.requests) == 5


async def test_client_errors_are_not_retried(
    llm: ScriptedOpenAI, client: OpenAIModelClient
) -> None:
    llm.script("m", [fail(400, "bad request")])
    with pytest.raises(ModelError, match="400"):
        await client.create([UserMessage(content="hi")])
    assert len(llm.requests) == 1


async def test_agent_turns_reach_the_server_labelled(
    llm: ScriptedOpenAI, client: OpenAIModelClient
) -> None:
    llm.script("m", ["ok"])
    agent = AssistantAgent("coder", client, system_message="sys")
    await agent.on_messages(
        [
            TextMessage(source="user", content="task"),
            TextMessage(source="reviewer", content="REVISE"),
        ]
    )
    contents = [m["content"] for m in llm.requests[0]["messages"]]
    assert contents == ["sys", "[user]: task", "[reviewer]: REVISE"]
