"""An ExecutionClient that also reports every execution it sees, so the page can show each
sandbox run (stdout, stderr, exit code, time, files) as the service returned it, not only the
text the model reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from agent_client.service.client import ExecutionClient
from agent_client.service.models import Execution, ExecutionCreate

OnExecution = Callable[[Execution], Awaitable[None]]
OnCancel = Callable[[str], Awaitable[None]]


class RecordingExecutionClient(ExecutionClient):
    """Calls ``on_execution`` with each execution whose state changed since last reported."""

    def __init__(
        self, base_url: str, api_key: str, *, on_execution: OnExecution, on_cancel: OnCancel
    ) -> None:
        super().__init__(base_url, api_key)
        self._on_execution = on_execution
        self._on_cancel = on_cancel
        self._states: dict[str, str] = {}

    async def submit_request(self, request: ExecutionCreate) -> Execution:
        return await self._seen(await super().submit_request(request))

    async def wait(self, execution_id: str, timeout_s: float | None = None) -> Execution:
        return await self._seen(await super().wait(execution_id, timeout_s))

    async def cancel(self, execution_id: str) -> Execution:
        await self._on_cancel(execution_id)
        return await self._seen(await super().cancel(execution_id))

    async def _seen(self, execution: Execution) -> Execution:
        if self._states.get(execution.id) != execution.state:
            self._states[execution.id] = execution.state
            await self._on_execution(execution)
        return execution
