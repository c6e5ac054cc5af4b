"""SandboxCodeExecutor: AutoGen's ``CodeExecutor`` interface on the sandbox service.

With it, ``autogen_agentchat.agents.CodeExecutorAgent`` runs generated code in the sandbox
instead of on the host. Needs ``autogen-core`` (>= 0.4), which this package does not depend on:
install it yourself (it is in the project's dev group). This is the only module that imports it.

AutoGen never calls ``start``/``stop`` itself: use the executor as an async context manager
around the team run, so its sandbox session is deleted when the run ends::

    async with SandboxCodeExecutor(client) as executor:
        agent = CodeExecutorAgent("executor", code_executor=executor)
        ...
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Literal

from autogen_core import CancellationToken as AutogenCancellationToken
from autogen_core.code_executor import CodeBlock as AutogenCodeBlock
from autogen_core.code_executor import CodeExecutor as AutogenCodeExecutor
from autogen_core.code_executor import CodeResult as AutogenCodeResult

from agent_client.cancellation import CancellationToken
from agent_client.code_blocks import CANONICAL_LANGUAGE, choose_program
from agent_client.errors import AgentClientError
from agent_client.executors.remote import RemoteExecutor
from agent_client.messages import CodeBlock
from agent_client.service.client import ExecutionClient
from agent_client.service.models import LimitsOverride
from agent_client.teams.verification import harness, parse_tests

logger = logging.getLogger(__name__)


class SandboxCodeExecutor(AutogenCodeExecutor):
    """Runs AutoGen code blocks in one sandbox session; failures come back as results.

    A timeout is exit code 124 with a message, a sandbox or service failure exit code 1 with
    the reason: AutoGen's agent shows them to the model instead of crashing the team.

    Args:
        client: an open ExecutionClient (the caller closes it).
        policy, limits, result_wait_s, interpreter: as for ``RemoteExecutor``; with
            ``interpreter=True`` it stands in for AutoGen's ``JupyterCodeExecutor``: Python
            blocks share one kernel, so a later block uses what an earlier one defined.
        blocks: "all" runs every block in order (AutoGen's way); "program" runs only the
            message's complete program (its longest block) and says which one it ran, so a
            one-line example placed before the real program cannot stop the run.
        tests: Python asserts written from the task (e.g. its examples): each program then
            runs with every assert checked on its own, the output ends ``TESTS PASSED k/n``,
            and the exit code is 0 only when all passed, so "exit code 0" means tested.
    """

    def __init__(
        self,
        client: ExecutionClient,
        *,
        policy: str | None = None,
        limits: LimitsOverride | None = None,
        result_wait_s: float = 300.0,
        languages: Mapping[str, str] | None = None,
        interpreter: bool = False,
        blocks: Literal["all", "program"] = "all",
        tests: str | None = None,
    ) -> None:
        self._block_choice = blocks
        self._tests = parse_tests(f"```python\n{tests}\n```") if tests is not None else None
        if tests is not None and self._tests is None:
            raise ValueError("tests has no assert statement")
        self._remote = RemoteExecutor(
            client,
            policy=policy,
            limits=limits,
            result_wait_s=result_wait_s,
            languages=languages,
            interpreter=interpreter,
        )

    @property
    def session_id(self) -> str | None:
        return self._remote.session_id

    async def execute_code_blocks(
        self,
        code_blocks: list[AutogenCodeBlock],
        cancellation_token: AutogenCancellationToken,
    ) -> AutogenCodeResult:
        blocks = _our_blocks(code_blocks)
        note = ""
        if (self._block_choice == "program" or self._tests is not None) and len(blocks) > 1:
            index = choose_program(blocks)
            note = f"Ran block {index + 1} of {len(blocks)} (the complete program).\n"
            blocks = [blocks[index]]
        if self._tests is not None and blocks and blocks[0].language == "python":
            blocks = [CodeBlock(code=harness(blocks[0].code, self._tests), language="python")]
        token = CancellationToken()
        cancellation_token.add_callback(token.cancel)
        try:
            result = await self._remote.execute_code_blocks(blocks, token)
        except AgentClientError as exc:
            logger.warning("sandbox execution failed: %s", exc)
            return AutogenCodeResult(
                exit_code=1, output=f"The sandbox could not run the code: {exc}"
            )
        return AutogenCodeResult(exit_code=result.exit_code, output=note + result.output)

    async def start(self) -> None:
        await self._remote.start()

    async def stop(self) -> None:
        await self._remote.stop()

    async def restart(self) -> None:
        await self._remote.restart()


def _our_blocks(code_blocks: Sequence[AutogenCodeBlock]) -> list[CodeBlock]:
    return [
        CodeBlock(
            code=block.code,
            language=CANONICAL_LANGUAGE.get(block.language.lower(), block.language.lower()),
        )
        for block in code_blocks
    ]
