"""SandboxFunctionTool: a code-running ``FunctionTool`` for the OpenAI Agents SDK.

An ``agents.Agent`` given this tool runs the code its model writes in the sandbox service and
reads back the status, exit code, stdout and stderr as JSON. A failing or timed-out program is
a normal tool result, and so are arguments the model got wrong (a message saying how to call
the tool instead): neither ends the run. A wrong API key does, by raising.

Needs the OpenAI Agents SDK (``uv sync --extra openai-agents``), which only this module and
``openai_agents_sandbox`` import. It works with any model the SDK drives, Responses or Chat
Completions, because it is a plain function tool::

    async with SandboxFunctionTool(service_url, api_key, session=True) as sandbox:
        agent = Agent(name="coder", instructions="...", tools=[sandbox])
        result = await Runner.run(agent, "What is 2**100?")

For the SDK's own sandbox agents (``SandboxAgent``, with their shell and file tools), the
service is a sandbox backend instead: see ``agent_client.adapters.openai_agents_sandbox``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from pydantic import ValidationError

try:
    from agents import FunctionTool
    from agents.tool_context import ToolContext
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "agent_client.adapters.openai_agents needs the OpenAI Agents SDK: install it with "
        "`uv sync --extra openai-agents` (or `pip install 'agent-sandbox[openai-agents]'`)."
    ) from exc

from agent_client.adapters.code_tool import (
    DEFAULT_DESCRIPTION,
    DEFAULT_TOOL_NAME,
    SESSION_DESCRIPTION,
    RunCodeArgs,
    SandboxCodeRunner,
    invalid_arguments_message,
)
from agent_client.service.models import LimitsOverride


class SandboxFunctionTool(FunctionTool):
    """A ``FunctionTool`` whose calls run code in the sandbox service.

    Use it as an async context manager (or call ``aclose``) when ``session=True``, so the
    sessions it opened are deleted when the agent is done; without sessions there is nothing
    to release.

    Args:
        service_url: the service's root, e.g. ``http://127.0.0.1:8000``.
        api_key: the tenant's key.
        language: the language of calls that name none.
        policy: the service policy to run under; None uses the key's default.
        limits: tighter limits for every run.
        session: keep a workspace (files) across the tool's calls.
        idle_timeout_s: the sessions' idle timeout (None: the service's default).
        result_wait_s: how long to wait for one run before cancelling it.
        name: the tool's name as the model sees it.
        description: what the model is told about the tool (a default explains the result).
    """

    def __init__(
        self,
        service_url: str,
        api_key: str,
        *,
        language: str = "python",
        policy: str | None = None,
        limits: LimitsOverride | None = None,
        session: bool = False,
        idle_timeout_s: float | None = None,
        result_wait_s: float = 300.0,
        name: str = DEFAULT_TOOL_NAME,
        description: str | None = None,
    ) -> None:
        self._runner = SandboxCodeRunner(
            service_url,
            api_key,
            language=language,
            policy=policy,
            limits=limits,
            session=session,
            idle_timeout_s=idle_timeout_s,
            result_wait_s=result_wait_s,
        )
        if description is None:
            description = DEFAULT_DESCRIPTION + (SESSION_DESCRIPTION if session else "")
            description += f" Default language: {language}."
        super().__init__(
            name=name,
            description=description,
            params_json_schema=RunCodeArgs.model_json_schema(),
            on_invoke_tool=self._invoke,
            strict_json_schema=True,
        )

    @property
    def session_ids(self) -> dict[str, str]:
        """Open sessions by language (empty unless ``session=True`` and called)."""
        return self._runner.session_ids

    async def _invoke(self, context: ToolContext[Any], arguments: str) -> str:
        try:
            args = RunCodeArgs.model_validate_json(arguments or "{}")
        except ValidationError as exc:
            return invalid_arguments_message(self.name, exc)
        result = await self._runner.run(args.code, args.language)
        return result.model_dump_json()

    async def aclose(self) -> None:
        """Delete the sessions the tool opened."""
        await self._runner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
