"""RemoteExecutor: code blocks run in the execution service, in one session per team run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Literal, Self

from agent_client.cancellation import CancellationToken
from agent_client.errors import (
    InvalidRequest,
    NotFound,
    Overloaded,
    QuotaExceeded,
    ServiceError,
    ServiceUnavailable,
    SessionBusy,
    SessionEnded,
    StoreUnavailable,
    WaitTimeout,
)
from agent_client.executors.base import KILLED_EXIT_CODE, TIMEOUT_EXIT_CODE, CodeResult
from agent_client.messages import CodeBlock
from agent_client.service.client import ExecutionClient
from agent_client.service.models import Execution, LimitsOverride, OutputFile, RichOutput

logger = logging.getLogger(__name__)

_RETRYABLE = (SessionBusy, QuotaExceeded, Overloaded, StoreUnavailable, ServiceUnavailable)
# The session itself is gone (expired, deleted, or its record already reaped): retrying the same
# session can never succeed, a new one can.
_SESSION_GONE = (SessionEnded, NotFound)

# The session every block tries first; the service's general image runs the others there too.
SHARED_SESSION_LANGUAGE = "python"
DEFAULT_LANGUAGES: Mapping[str, str] = {
    "python": "python",
    "bash": "bash",
    "javascript": "javascript",
    "js": "javascript",
    "node": "javascript",
}

SESSION_RENEWED_NOTICE = (
    "[Note: the earlier sandbox session ended (it was idle too long or was deleted), so this code "
    "ran in a new, empty session. Files written by earlier code blocks are gone; recreate any "
    "file this code needs.]"
)


class RemoteExecutor:
    """A CodeExecutor on the sandbox service; files written by one block are there for the next.

    Blocks of every language run in the run's Python session, opened lazily: its sandbox also
    carries bash and JavaScript, so they share one workspace. A language the service says that
    session cannot run (its policy maps Python to an image without it) gets a session of its
    own. All are deleted on ``stop``, which teams call when a run ends, also on cancellation or
    error. Cancelling a run while code is running cancels that execution on the service.

    A session the service has ended (idle longer than its timeout while the model was thinking,
    or deleted) is replaced by a fresh one, at most once per block, and that block's output
    starts with ``SESSION_RENEWED_NOTICE`` so the model knows earlier files are gone.

    Args:
        client: an open ExecutionClient (the caller owns it and closes it).
        policy: the service policy to run under; None uses the tenant's default.
        limits: tighter limits for every execution (wall time, memory, ...).
        collect: workspace globs whose files come back in ``CodeResult.files``.
        languages: block language -> service language (default: python, bash, and
            javascript, also as js or node).
        result_wait_s: how long to wait for one execution before cancelling it (a safety net
            above the policy's own wall-time limit).
        max_attempts: tries per block when the service is busy, over quota, without its store
            or unreachable (replacing an ended session is not counted as a try).
        idle_timeout_s: the sessions' idle timeout in whole seconds (None: the service's
            default); a session idle for longer is ended by the service and renewed here.
        hold_s: how long the service may hold one submit request before polling takes over
            (short requests keep server threads free and survive proxies' idle timeouts).
        interpreter: run Python blocks as cells of one Jupyter kernel (an interpreter
            session), as AutoGen's JupyterCodeExecutor does: variables and imports persist
            between blocks, a block over its wall time is interrupted without losing them, and
            displays (plots, tables) are described in the output. Other languages still run in
            plain sessions.
    """

    def __init__(
        self,
        client: ExecutionClient,
        *,
        policy: str | None = None,
        limits: LimitsOverride | None = None,
        collect: Sequence[str] = (),
        languages: Mapping[str, str] | None = None,
        result_wait_s: float = 300.0,
        max_attempts: int = 5,
        idle_timeout_s: float | None = None,
        hold_s: float = 4.0,
        interpreter: bool = False,
    ) -> None:
        self._client = client
        self._policy = policy
        self._limits = limits
        self._collect = list(collect)
        self._languages = dict(languages or DEFAULT_LANGUAGES)
        self._result_wait_s = result_wait_s
        self._max_attempts = max_attempts
        self._idle_timeout_s = idle_timeout_s
        self._hold_s = hold_s
        self._interpreter = interpreter
        self._sessions: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._apart: set[str] = set()  # languages the Python session's image cannot run

    @property
    def session_id(self) -> str | None:
        """The Python session of the current run, if one is open."""
        return self._sessions.get("python")

    @property
    def session_ids(self) -> dict[str, str]:
        """Open sessions by service language."""
        return dict(self._sessions)

    async def start(self) -> None:
        """Open the Python session now rather than at the first block."""
        await self._session_for("python")

    async def _session_for(self, language: str) -> str:
        async with self._lock:
            if language not in self._sessions:
                kind: Literal["plain", "interpreter"] = (
                    "interpreter" if self._interpreter and language == "python" else "plain"
                )
                session = await self._client.create_session(
                    policy=self._policy,
                    language=language,
                    idle_timeout_s=self._idle_timeout_s,
                    kind=kind,
                )
                self._sessions[language] = session.id
                logger.debug("opened %s session %s", language, session.id)
            return self._sessions[language]

    async def _forget(self, session_id: str | None) -> None:
        """Drop an ended session so the next block opens a new one.

        Only if it is still the current one: another block may already have replaced it.
        """
        async with self._lock:
            for language, current in list(self._sessions.items()):
                if session_id is not None and current == session_id:
                    del self._sessions[language]
                    logger.info("%s session %s ended on the service", language, session_id)

    async def stop(self) -> None:
        async with self._lock:
            sessions, self._sessions = self._sessions, {}
        for session_id in sessions.values():
            try:
                await self._client.delete_session(session_id)
            except NotFound:
                pass  # already expired on the service
            except ServiceError as exc:
                # The service reaps idle sessions itself; a failed delete must not mask the end.
                logger.warning("could not delete session %s: %s", session_id, exc)

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(self.stop())

    async def execute_code_blocks(
        self, blocks: Sequence[CodeBlock], cancellation: CancellationToken | None = None
    ) -> CodeResult:
        """Run ``blocks`` in order, stopping at the first non-zero exit.

        Args:
            blocks: the code blocks, each run as one execution in its language's session.
            cancellation: cancelling it cancels the running execution on the service.

        Returns:
            The last run block's exit code, and the outputs of all run blocks joined; a block
            that had to run in a new session starts with ``SESSION_RENEWED_NOTICE``.

        Raises:
            SessionEnded: the session ended and so did the new one opened for the same block.
            NotFound: as SessionEnded, when the service no longer knows the session at all.
            ServiceError: the service refused the code (too large, unknown policy) or stayed
                busy or unavailable after ``max_attempts``; callers turn this into a message.
            asyncio.CancelledError: the run was cancelled (the execution is cancelled first).
        """
        outputs: list[str] = []
        files: list[OutputFile] = []
        exit_code = 0
        for block in blocks:
            language = self._languages.get(block.language)
            if language is None:
                outputs.append(f"Language {block.language!r} is not supported here.")
                return CodeResult(exit_code=1, output="\n".join(outputs), files=files)
            run = asyncio.ensure_future(self._run_block(block.code, language))
            if cancellation is not None:
                cancellation.link(run)
            result = await run
            outputs.append(result.output)
            files.extend(result.files)
            exit_code = result.exit_code
            if exit_code != 0:
                break
        return CodeResult(
            exit_code=exit_code, output="\n".join(o for o in outputs if o), files=files
        )

    async def _run_block(self, code: str, language: str) -> CodeResult:
        renewed = False
        while True:
            execution, renewed_on_submit = await self._start(code, language, may_renew=not renewed)
            renewed = renewed or renewed_on_submit
            try:
                if not execution.is_final:
                    execution = await self._client.wait(execution.id, self._result_wait_s)
            except WaitTimeout:
                await self._cancel_quietly(execution.id)
                return _with_notice(
                    CodeResult(
                        exit_code=TIMEOUT_EXIT_CODE,
                        output=(
                            f"No result after {self._result_wait_s:g}s; "
                            "the execution was cancelled."
                        ),
                    ),
                    renewed,
                )
            except asyncio.CancelledError:
                await asyncio.shield(self._cancel_quietly(execution.id))
                raise
            if _session_ended_before_run(execution) and not renewed:
                # Admitted while the session was active, refused by the worker once it had
                # ended: the code never ran, so running it in a new session is safe.
                await self._forget(execution.session_id)
                renewed = True
                continue
            return _with_notice(describe_execution(execution), renewed)

    async def _start(self, code: str, language: str, *, may_renew: bool) -> tuple[Execution, bool]:
        """Submit, and if cancelled meanwhile, still learn the id so the run is cancelled too."""
        submit = asyncio.ensure_future(self._submit(code, language, may_renew=may_renew))
        try:
            return await asyncio.shield(submit)
        except asyncio.CancelledError:
            try:
                execution, _ = await submit
            except ServiceError:
                raise asyncio.CancelledError from None
            await self._cancel_quietly(execution.id)
            raise

    async def _submit(self, code: str, language: str, *, may_renew: bool) -> tuple[Execution, bool]:
        """The accepted execution, and whether its session had to be replaced first."""
        renewed = False
        attempt = 0
        while True:
            # An interpreter session runs Python cells only: other languages get their own.
            apart = language in self._apart or (self._interpreter and language != "python")
            opened_for = language if apart else SHARED_SESSION_LANGUAGE
            session_id = await self._session_for(opened_for)
            try:
                execution = await self._client.submit(
                    language,
                    code,
                    policy=self._policy,
                    limits=self._limits,
                    session_id=session_id,
                    collect=self._collect,
                    wait=True,
                    wait_timeout_s=min(self._result_wait_s, self._hold_s),
                )
            except _SESSION_GONE:
                if renewed or not may_renew:
                    raise
                await self._forget(session_id)
                renewed = True
            except InvalidRequest as exc:
                if exc.field != "language" or opened_for == language:
                    raise
                # That session's image lacks the language: it runs in a session of its own.
                self._apart.add(language)
            except _RETRYABLE as exc:
                attempt += 1
                if attempt >= self._max_attempts:
                    raise
                pause = min(exc.retry_after_s or 0.2 * attempt, 5.0)
                logger.debug("service busy (%s); retrying in %.1fs", exc.code, pause)
                await asyncio.sleep(pause)
            else:
                return execution, renewed

    async def _cancel_quietly(self, execution_id: str) -> None:
        try:
            await self._client.cancel(execution_id)
        except ServiceError as exc:
            logger.warning("could not cancel execution %s: %s", execution_id, exc)


def _session_ended_before_run(execution: Execution) -> bool:
    return (
        execution.state == "failed"
        and execution.error is not None
        and execution.error.code == SessionEnded.code
    )


def _with_notice(result: CodeResult, renewed: bool) -> CodeResult:
    if not renewed:
        return result
    output = (
        f"{SESSION_RENEWED_NOTICE}\n{result.output}" if result.output else SESSION_RENEWED_NOTICE
    )
    return replace(result, output=output)


def describe_display(output: RichOutput) -> str:
    """A cell's display as a model can read it: text as it is, an image or HTML by its kind."""
    if output.mime_type == "image/png":
        return f"[an image was produced: PNG, {output.size_bytes} bytes]"
    text = output.content.decode("utf-8", errors="replace")
    cut = " (cut)" if output.truncated else ""
    if output.mime_type == "text/html":
        return f"[HTML output, {output.size_bytes} bytes{cut}]"
    return f"{text}{cut}"


def describe_execution(execution: Execution) -> CodeResult:
    """Turn a final execution into the exit code and text a model should read."""
    if execution.state == "failed" or execution.result is None:
        reason = execution.error.message if execution.error else execution.state
        code = execution.error.code if execution.error else execution.state
        return CodeResult(
            exit_code=1, output=f"The sandbox could not run the code ({code}): {reason}"
        )
    result = execution.result
    parts = [result.stdout.rstrip("\n"), result.stderr.rstrip("\n")]
    parts.extend(describe_display(output) for output in result.outputs)
    if result.stdout_truncated or result.stderr_truncated:
        parts.append("[output truncated: the program printed more than the limit]")
    exit_code = result.exit_code if result.exit_code is not None else 1
    if result.status == "timeout":
        exit_code = TIMEOUT_EXIT_CODE
        limit = f" after {result.wall_time_s:g}s" if result.wall_time_s else ""
        if "interrupted" in result.message:  # a cell: the kernel kept its state
            parts.append(f"[timed out{limit}: the cell was interrupted; variables are kept]")
        else:
            parts.append(f"[timed out{limit}: the program was killed]")
    elif result.status == "memory_limit":
        exit_code = KILLED_EXIT_CODE
        parts.append("[killed: the program ran out of memory]")
    elif result.status == "cancelled":
        exit_code = exit_code or 130
        parts.append("[cancelled]")
    elif result.status == "error" and exit_code == 0:
        exit_code = 1
    if result.message:  # a reason for any status but ok, or an interpreter's notice
        parts.append(result.message)
    return CodeResult(
        exit_code=exit_code, output="\n".join(p for p in parts if p), files=result.files
    )
