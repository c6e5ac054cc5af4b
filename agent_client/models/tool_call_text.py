"""Recovering tool calls that a local server left in the text instead of the ``tool_calls`` field.

llama.cpp-style servers return calls only when the tool is forced; otherwise the model writes
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` or a fenced JSON block.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection
from typing import Any

from agent_client.messages import FunctionCall

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
_FENCED = re.compile(r"```(?:json)?\s*\n(.*?)\n\s*```", re.DOTALL)


def parse_tool_calls(content: str, tool_names: Collection[str]) -> list[FunctionCall]:
    """Tool calls written in ``content`` that name one of ``tool_names``; [] if none parse.

    Tagged calls win over fenced JSON; a fenced block counts only if it is a call object (so
    ordinary JSON in an answer is left alone).
    """
    if not tool_names:
        return []
    candidates = _TAGGED.findall(content) or _FENCED.findall(content)
    calls: list[FunctionCall] = []
    for raw in candidates:
        for obj in _objects(raw):
            call = _as_call(obj, tool_names)
            if call is not None:
                calls.append(call)
    return calls


def _objects(raw: str) -> list[Any]:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return []
    return parsed if isinstance(parsed, list) else [parsed]


def _as_call(obj: Any, tool_names: Collection[str]) -> FunctionCall | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):  # {"type": "function", "function": {...}}
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or name not in tool_names:
        return None
    arguments = obj.get("arguments", obj.get("parameters", {}))
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return FunctionCall(id=f"call_{uuid.uuid4().hex[:12]}", name=name, arguments=text)
