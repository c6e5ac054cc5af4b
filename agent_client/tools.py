"""FunctionTool: a typed Python function offered to a model, with a schema from its signature.

Arguments are validated before the call; bad arguments and the function's own exceptions come
back as error results the model can read and correct, never as exceptions that end a run.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Callable
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import to_json

from agent_client.errors import ToolDefinitionError
from agent_client.messages import FunctionCall, FunctionExecutionResult
from agent_client.models.base import ToolSchema

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ARG_LINE = re.compile(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")


class FunctionTool:
    """Wraps a sync or async function whose parameters all carry type annotations.

    Args:
        func: the function; sync ones run in a worker thread so they cannot stall the loop.
        name: the tool's name for the model (default: the function's name).
        description: what the tool does (default: the docstring's first paragraph). Parameter
            descriptions come from a Google-style ``Args:`` section of the docstring.

    Raises:
        ToolDefinitionError: a parameter lacks an annotation, is ``*args``/``**kwargs``, or the
            name is not one a model API accepts.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        self._func = func
        self.name = name or func.__name__
        if not _NAME.match(self.name):
            raise ToolDefinitionError(f"tool name {self.name!r} must match {_NAME.pattern}")
        summary, arg_docs = _docstring_parts(inspect.getdoc(func) or "")
        self.description = description if description is not None else summary
        self._args_model = _arguments_model(func, self.name, arg_docs)
        schema = self._args_model.model_json_schema()
        schema.pop("title", None)
        self.schema = ToolSchema(name=self.name, description=self.description, parameters=schema)

    async def run(self, call: FunctionCall) -> FunctionExecutionResult:
        """Validate ``call``'s arguments, call the function, and report the outcome as text."""
        try:
            raw = json.loads(call.arguments or "{}")
        except ValueError as exc:
            return self._error(call, f"arguments are not valid JSON: {exc}")
        if not isinstance(raw, dict):
            return self._error(call, "arguments must be a JSON object")
        try:
            arguments = self._args_model.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            return self._error(call, f"invalid arguments: {problems}")
        kwargs = {field: getattr(arguments, field) for field in type(arguments).model_fields}
        try:
            if inspect.iscoroutinefunction(self._func):
                value = await self._func(**kwargs)
            else:
                value = await asyncio.to_thread(self._func, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a tool's failure is for the model to read, not to end the run
            return self._error(call, f"{type(exc).__name__}: {exc}")
        return FunctionExecutionResult(call_id=call.id, name=self.name, content=_as_text(value))

    def _error(self, call: FunctionCall, message: str) -> FunctionExecutionResult:
        return FunctionExecutionResult(
            call_id=call.id, name=self.name, content=f"Error: {message}", is_error=True
        )


def _arguments_model(
    func: Callable[..., Any], name: str, arg_docs: dict[str, str]
) -> type[BaseModel]:
    try:
        hints = get_type_hints(func)
    except (NameError, TypeError) as exc:
        raise ToolDefinitionError(f"cannot resolve the annotations of {name}: {exc}") from exc
    fields: dict[str, Any] = {}
    for pname, param in inspect.signature(func).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(f"{name}: *args/**kwargs cannot be described to a model")
        if pname not in hints:
            raise ToolDefinitionError(f"{name}: parameter {pname!r} needs a type annotation")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (hints[pname], Field(default, description=arg_docs.get(pname)))
    model: type[BaseModel] = create_model(
        f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model


def _docstring_parts(doc: str) -> tuple[str, dict[str, str]]:
    summary = doc.split("\n\n", 1)[0].strip().replace("\n", " ")
    arg_docs: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        if not in_args or not stripped:
            continue
        if not line[:1].isspace():
            break  # the next section ("Returns:") starts at the margin
        match = _ARG_LINE.match(line)
        if match:
            arg_docs[match.group(1)] = match.group(2).strip()
    return summary, arg_docs


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return to_json(value).decode()
    except (TypeError, ValueError):
        return str(value)
