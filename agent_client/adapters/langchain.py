"""SandboxCodeTool: a LangChain tool that runs code in the sandbox service.

Its ``invoke``/``ainvoke`` take ``{"code": ..., "language": ...}`` and return the run's status,
exit code, stdout and stderr as a dict (JSON in a ``ToolMessage`` when called with a tool
call). A failing or timed-out program is a normal result; arguments that do not fit the schema
raise pydantic's ``ValidationError`` unless ``handle_validation_error`` is set, as for any
LangChain tool; a wrong API key raises ``Unauthorized``.

Needs ``langchain-core`` (``uv sync --extra langchain``); this is the only module of the
library that imports it::

    tool = SandboxCodeTool(service_url=url, api_key=key, session=True)
    tool.invoke({"code": "print(6 * 7)"})     # {"status": "ok", "stdout": "42\\n", ...}
    tool.close()                              # deletes the session (or: await tool.aclose())
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pydantic import BaseModel, Field, PrivateAttr, SecretStr

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForToolRun,
        CallbackManagerForToolRun,
    )
    from langchain_core.tools import BaseTool
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "agent_client.adapters.langchain needs langchain-core: install it with "
        "`uv sync --extra langchain` (or `pip install 'agent-sandbox[langchain]'`)."
    ) from exc

from agent_client.adapters.code_tool import (
    DEFAULT_DESCRIPTION,
    DEFAULT_TOOL_NAME,
    SESSION_DESCRIPTION,
    RunCodeArgs,
    SandboxCodeRunner,
)
from agent_client.service.models import LimitsOverride

T = TypeVar("T")


class SandboxCodeTool(BaseTool):
    """A LangChain ``BaseTool`` whose calls run code in the sandbox service.

    Fields (keyword arguments): ``service_url`` and ``api_key`` of the service; ``language``
    for calls that name none; ``policy`` (None: the key's default); ``limits`` for every run;
    ``session`` to keep a workspace across calls (one session per language, deleted by
    ``close``/``aclose``, else reaped by the service after ``idle_timeout_s``);
    ``result_wait_s``, how long to wait for one run before cancelling it. ``name`` and
    ``description`` are LangChain's own.
    """

    name: str = DEFAULT_TOOL_NAME
    description: str = ""
    args_schema: type[BaseModel] = RunCodeArgs

    service_url: str
    api_key: SecretStr = Field(exclude=True)
    language: str = "python"
    policy: str | None = None
    limits: LimitsOverride | None = None
    session: bool = False
    idle_timeout_s: float | None = None
    result_wait_s: float = 300.0

    _runner: SandboxCodeRunner = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        if not self.description:
            self.description = (
                DEFAULT_DESCRIPTION
                + (SESSION_DESCRIPTION if self.session else "")
                + f" Default language: {self.language}."
            )
        self._runner = SandboxCodeRunner(
            self.service_url,
            self.api_key.get_secret_value(),
            language=self.language,
            policy=self.policy,
            limits=self.limits,
            session=self.session,
            idle_timeout_s=self.idle_timeout_s,
            result_wait_s=self.result_wait_s,
        )

    @property
    def session_ids(self) -> dict[str, str]:
        """Open sessions by language (empty unless ``session=True`` and called)."""
        return self._runner.session_ids

    def _run(
        self,
        code: str,
        language: str | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> dict[str, Any]:
        return _blocking(self._arun(code, language))

    async def _arun(
        self,
        code: str,
        language: str | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> dict[str, Any]:
        result = await self._runner.run(code, language)
        return result.model_dump(mode="json")

    async def aclose(self) -> None:
        """Delete the sessions the tool opened."""
        await self._runner.aclose()

    def close(self) -> None:
        """``aclose`` for synchronous callers."""
        _blocking(self._runner.aclose())


def _blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from synchronous code.

    LangChain calls ``_run`` from plain threads, and also from inside a running event loop
    (a sync ``invoke`` in async code), where ``asyncio.run`` is refused: then the coroutine
    gets a loop of its own in a worker thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-tool") as pool:
        return pool.submit(asyncio.run, coroutine).result()
