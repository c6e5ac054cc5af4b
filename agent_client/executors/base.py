"""The CodeExecutor protocol and its CodeResult; there is deliberately no local executor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

from agent_client.cancellation import CancellationToken
from agent_client.messages import CodeBlock
from agent_client.service.models import OutputFile

# Exit codes a shell would give, so a model reads the outcome the way it knows.
TIMEOUT_EXIT_CODE = 124
KILLED_EXIT_CODE = 137


@dataclass(frozen=True)
class CodeResult:
    """What running some blocks did: the exit code of the last block run, and all output."""

    exit_code: int
    output: str
    files: Sequence[OutputFile] = field(default_factory=tuple)


class CodeExecutor(Protocol):
    """Runs code blocks in order, stopping at the first that fails.

    Generated code never runs on the host: implementations send it to a sandbox. ``start`` and
    ``stop`` bracket one team run; ``execute_code_blocks`` starts lazily if needed.
    """

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def restart(self) -> None: ...

    async def execute_code_blocks(
        self, blocks: Sequence[CodeBlock], cancellation: CancellationToken | None = None
    ) -> CodeResult: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
