"""FunctionTool schemas, validation, and errors returned as results; text tool-call recovery."""

from __future__ import annotations

import json
from typing import Literal

import pytest

from agent_client.errors import ToolDefinitionError
from agent_client.messages import FunctionCall
from agent_client.models.tool_call_text import parse_tool_calls
from agent_client.tools import FunctionTool


def add(a: int, b: int = 2) -> int:
    """Add two numbers.

    Args:
        a: the first number.
        b (int): the second number.

    Returns:
        The sum.
    """
    return a + b


async def weather(city: str, unit: Literal["C", "F"] = "C") -> dict[str, object]:
    """Current weather in a city."""
    if city == "Atlantis":
        raise LookupError("no such city")
    return {"city": city, "temp": 21, "unit": unit}


def call(name: str, arguments: str) -> FunctionCall:
    return FunctionCall(id="c1", name=name, arguments=arguments)


def test_schema_from_signature_and_docstring() -> None:
    tool = FunctionTool(add)
    assert tool.name == "add"
    assert tool.description == "Add two numbers."
    params = tool.schema.parameters
    assert params["required"] == ["a"]
    assert params["properties"]["a"]["type"] == "integer"
    assert params["properties"]["a"]["description"] == "the first number."
    assert params["properties"]["b"]["default"] == 2
    assert params["properties"]["b"]["description"] == "the second number."
    assert params["additionalProperties"] is False


async def test_sync_and_async_tools_run_with_validated_arguments() -> None:
    assert (await FunctionTool(add).run(call("add", '{"a": "3"}'))).content == "5"
    result = await FunctionTool(weather).run(call("weather", '{"city": "Oslo", "unit": "F"}'))
    assert json.loads(result.content) == {"city": "Oslo", "temp": 21, "unit": "F"}
    assert not result.is_error


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"b": 1}', "a: Field required"),
        ('{"a": 1, "c": 3}', "c: Extra inputs"),
        ('{"a": "x"}', "a: Input should be a valid integer"),
    ],
)
async def test_bad_arguments_are_error_results(arguments: str, fragment: str) -> None:
    result = await FunctionTool(add).run(call("add", arguments))
    assert result.is_error
    assert fragment in result.content


async def test_exceptions_in_the_tool_are_error_results() -> None:
    result = await FunctionTool(weather).run(call("weather", '{"city": "Atlantis"}'))
    assert result.is_error
    assert result.content == "Error: LookupError: no such city"


def test_untyped_or_variadic_functions_are_refused() -> None:
    def untyped(x):  # type: ignore[no-untyped-def]
        return x

    def variadic(*args: int) -> int:
        return sum(args)

    with pytest.raises(ToolDefinitionError, match="annotation"):
        FunctionTool(untyped)
    with pytest.raises(ToolDefinitionError, match=r"\*args"):
        FunctionTool(variadic)
    with pytest.raises(ToolDefinitionError, match="name"):
        FunctionTool(add, name="bad name!")


def test_tagged_tool_calls_are_recovered_from_text() -> None:
    text = 'Sure.\n<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
    calls = parse_tool_calls(text, ["add"])
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("add", {"a": 1, "b": 2})]


def test_fenced_json_tool_calls_are_recovered_but_plain_json_is_not() -> None:
    fenced = '```json\n{"name": "weather", "arguments": {"city": "Oslo"}}\n```'
    assert [c.name for c in parse_tool_calls(fenced, ["weather"])] == ["weather"]
    data = '```json\n{"city": "Oslo", "temp": 3}\n```'
    assert parse_tool_calls(data, ["weather"]) == []
    unknown = '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>'
    assert parse_tool_calls(unknown, ["weather"]) == []
    assert parse_tool_calls("<tool_call>{oops</tool_call>", ["weather"]) == []
