"""CodeExecutorAgent: runs the code others wrote and reports the real exit code and output.

A failure of any kind (the code's, the sandbox's, a timeout) is a message in the thread, never
an exception that ends the team; only cancellation propagates.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent_client.agents.base import BaseChatAgent, Response
from agent_client.cancellation import CancellationToken
from agent_client.code_blocks import (
    DEFAULT_LANGUAGES,
    choose_program,
    extract_code_blocks,
    has_unclosed_fence,
)
from agent_client.errors import AgentClientError
from agent_client.executors.base import CodeExecutor, CodeResult
from agent_client.messages import (
    CHAT_MESSAGES,
    AnyMessage,
    ChatMessage,
    CodeBlock,
    CodeExecutionEvent,
    CodeGenerationEvent,
    TextMessage,
)

logger = logging.getLogger(__name__)

NO_CODE_REPLY = (
    "No code to run: write the complete program in one fenced ```python block "
    "(with its imports) so it can be executed."
)
CUT_OFF_REPLY = (
    "No code to run: the code block was never closed, so the reply was cut off. Send a "
    "shorter complete program in one fenced ```python block."
)


@dataclass(frozen=True)
class Attempt:
    """One distinct piece of code that was run, and what it did."""

    number: int
    digest: str
    blocks: tuple[CodeBlock, ...]
    exit_code: int
    output: str


class CodeExecutorAgent(BaseChatAgent):
    """Extracts fenced code blocks from the newest message that has any and runs them in order.

    Args:
        executor: where the code runs (``RemoteExecutor`` for the sandbox service).
        languages: fence languages to run; others are ignored.
        sources: only take code from these agents (None: anyone).
        detect_repeats: when code identical to an earlier attempt comes back, do not run it
            again; answer with the earlier result and say it is a repeat, so the author changes
            course instead of looping.
        blocks: "all" runs every block of the message in order; "program" runs only the
            message's complete program (its longest block) and says which one it ran.
    """

    def __init__(
        self,
        name: str,
        executor: CodeExecutor,
        *,
        description: str = "Runs the code blocks in the latest message and reports the result.",
        languages: Collection[str] = DEFAULT_LANGUAGES,
        sources: Collection[str] | None = None,
        detect_repeats: bool = True,
        blocks: Literal["all", "program"] = "all",
    ) -> None:
        super().__init__(name, description)
        self._block_choice = blocks
        self._executor = executor
        self._languages = tuple(languages)
        self._sources = set(sources) if sources is not None else None
        self._detect_repeats = detect_repeats
        self._attempts: list[Attempt] = []
        # Messages received since this agent last answered: a cancelled turn keeps them, so a
        # resumed run still finds the code.
        self._inbox: list[ChatMessage] = []

    @property
    def attempts(self) -> list[Attempt]:
        return list(self._attempts)

    @property
    def best_attempt(self) -> Attempt | None:
        """The newest attempt that exited 0, worth keeping even if later ones broke it."""
        return next((a for a in reversed(self._attempts) if a.exit_code == 0), None)

    async def on_messages_stream(
        self, messages: Sequence[ChatMessage], cancellation: CancellationToken | None = None
    ) -> AsyncIterator[AnyMessage | Response]:
        self._inbox.extend(messages)
        found = self._latest_code(self._inbox)
        if found is None:
            cut = any(has_unclosed_fence(m.to_text()) for m in self._inbox[-1:])
            self._inbox.clear()
            reply = TextMessage(source=self.name, content=CUT_OFF_REPLY if cut else NO_CODE_REPLY)
            yield Response(chat_message=reply)
            return
        author, blocks = found
        chosen = ""
        if self._block_choice == "program" and len(blocks) > 1:
            index = choose_program(blocks)
            chosen = (
                f"Ran block {index + 1} of {len(blocks)} (the complete program); skipped the rest."
            )
            blocks = [blocks[index]]
        generation = CodeGenerationEvent(source=self.name, code_blocks=blocks, author=author)
        yield generation
        digest = _digest(blocks)
        earlier = next((a for a in self._attempts if a.digest == digest), None)
        if self._detect_repeats and earlier is not None:
            note = (
                f"This code is identical to attempt {earlier.number}, which was already run; "
                "its result is repeated below. Do not resubmit it: change the code."
            )
            result = CodeResult(exit_code=earlier.exit_code, output=earlier.output)
        else:
            note = ""
            result = await self._execute(blocks, cancellation)
            self._attempts.append(
                Attempt(
                    number=len(self._attempts) + 1,
                    digest=digest,
                    blocks=tuple(blocks),
                    exit_code=result.exit_code,
                    output=result.output,
                )
            )
        self._inbox.clear()
        message = CodeExecutionEvent(
            source=self.name,
            exit_code=result.exit_code,
            output=result.output,
            code_blocks=blocks,
            note="\n".join(n for n in (chosen, note) if n),
        )
        yield Response(chat_message=message, inner_messages=(generation,))

    def _latest_code(self, messages: Sequence[ChatMessage]) -> tuple[str, list[CodeBlock]] | None:
        for message in reversed(messages):
            if isinstance(message, CodeExecutionEvent) or message.source == self.name:
                continue
            if self._sources is not None and message.source not in self._sources:
                continue
            blocks = extract_code_blocks(message.to_text(), self._languages)
            if blocks:
                return message.source, blocks
        return None

    async def _execute(
        self, blocks: Sequence[CodeBlock], cancellation: CancellationToken | None
    ) -> CodeResult:
        try:
            return await self._executor.execute_code_blocks(blocks, cancellation)
        except AgentClientError as exc:
            logger.warning("executor failed: %s", exc)
            return CodeResult(exit_code=1, output=f"The sandbox could not run the code: {exc}")

    async def on_run_end(self) -> None:
        await self._executor.stop()

    async def on_reset(self, cancellation: CancellationToken | None = None) -> None:
        self._attempts.clear()
        self._inbox.clear()
        await self._executor.stop()

    async def save_state(self) -> dict[str, Any]:
        return {
            "inbox": CHAT_MESSAGES.dump_python(self._inbox, mode="json"),
            "attempts": [
                {
                    "number": a.number,
                    "digest": a.digest,
                    "blocks": [b.model_dump() for b in a.blocks],
                    "exit_code": a.exit_code,
                    "output": a.output,
                }
                for a in self._attempts
            ],
        }

    async def load_state(self, state: Mapping[str, Any]) -> None:
        self._inbox = CHAT_MESSAGES.validate_python(state.get("inbox", []))
        self._attempts = [
            Attempt(
                number=int(a["number"]),
                digest=str(a["digest"]),
                blocks=tuple(CodeBlock.model_validate(b) for b in a["blocks"]),
                exit_code=int(a["exit_code"]),
                output=str(a["output"]),
            )
            for a in state.get("attempts", [])
        ]


def _digest(blocks: Sequence[CodeBlock]) -> str:
    # Whitespace at the ends does not make code different; anything inside does.
    text = "\x00".join(f"{b.language}\x01{b.code.strip()}" for b in blocks)
    return hashlib.sha256(text.encode()).hexdigest()
