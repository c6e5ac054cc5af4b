"""ScriptedExecutor: canned results for unit tests, so no generated code ever runs on the host."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

from agent_client.cancellation import CancellationToken
from agent_client.executors.base import CodeResult
from agent_client.messages import CodeBlock

ScriptedResult = CodeResult | Callable[[Sequence[CodeBlock]], CodeResult]


class ScriptedExecutor:
    """Answers each ``execute_code_blocks`` with the next scripted result; records what it got."""

    def __init__(self, results: Sequence[ScriptedResult]) -> None:
        self._results = list(results)
        self.executed: list[list[CodeBlock]] = []
        self.starts = 0
        self.stops = 0
        self.running = False

    async def start(self) -> None:
        if not self.running:
            self.running = True
            self.starts += 1

    async def stop(self) -> None:
        if self.running:
            self.running = False
            self.stops += 1

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def execute_code_blocks(
        self, blocks: Sequence[CodeBlock], cancellation: CancellationToken | None = None
    ) -> CodeResult:
        await self.start()
        self.executed.append(list(blocks))
        if not self._results:
            return CodeResult(exit_code=1, output="ScriptedExecutor: no result left")
        result = self._results.pop(0)
        return result(blocks) if callable(result) else result

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
