"""The code-running tool the framework adapters wrap: its arguments, its result and its runner.

One owner for what a model sends (``RunCodeArgs``), what it reads back (``CodeToolResult``)
and how a call becomes an execution on the service (``SandboxCodeRunner``), so the OpenAI
Agents SDK and LangChain adapters only translate their framework's calling convention. No
framework is imported here.

What the program does (non-zero exit, timeout, out of memory) is a result with a status. So is
a request the service refuses for a reason the model can fix (an unknown language, code too
large): status ``not_run`` with the service's ``error_code`` and message. Only the developer's
mistakes raise: a wrong API key, or a policy the key may not use.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent_client.errors import (
    AgentClientError,
    NotFound,
    Overloaded,
    PolicyNotAllowed,
    QuotaExceeded,
    ServiceError,
    ServiceUnavailable,
    SessionBusy,
    SessionEnded,
    StoreUnavailable,
    Unauthorized,
    WaitTimeout,
)
from agent_client.executors.remote import SESSION_RENEWED_NOTICE
from agent_client.service.client import ExecutionClient
from agent_client.service.models import Execution, LimitsOverride

logger = logging.getLogger(__name__)

DEFAULT_TOOL_NAME = "run_code"
DEFAULT_DESCRIPTION = (
    "Run a complete program in an isolated sandbox (no network, no access to this machine) and "
    "get back its status, exit code, stdout and stderr. Print what you want to see. A failing "
    "program is a normal result: read stderr and fix the code."
)
SESSION_DESCRIPTION = " Files written to the working directory stay there for later calls."

ToolStatus = Literal[
    "ok", "error", "timeout", "memory_limit", "output_limit", "cancelled", "not_run"
]

# Transient refusals: the same request can succeed a moment later.
_RETRYABLE = (SessionBusy, QuotaExceeded, Overloaded, StoreUnavailable, ServiceUnavailable)
# The session itself is gone: only a new one can help.
_SESSION_GONE = (SessionEnded, NotFound)
# The developer's configuration is wrong: no tool call can fix it, so the run must stop.
_CONFIGURATION_ERRORS = (Unauthorized, PolicyNotAllowed)


class RunCodeArgs(BaseModel):
    """The arguments of one tool call, as the model sends them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(
        min_length=1,
        description="The complete program to run. Only what it prints comes back.",
    )
    language: str | None = Field(
        default=None,
        description="The program's language, e.g. python or bash; null for the tool's default.",
    )


def invalid_arguments_message(tool_name: str, error: ValidationError) -> str:
    """What the model reads when its arguments do not fit: what is wrong and a call that fits."""
    problems = "; ".join(
        f"{'.'.join(str(part) for part in issue['loc']) or 'arguments'}: {issue['msg']}"
        for issue in error.errors()
    )
    return (
        f"Invalid arguments for {tool_name}: {problems}. The code did not run. Call it with a "
        'JSON object like {"code": "print(6 * 7)", "language": null}.'
    )


class CodeToolResult(BaseModel):
    """What the model reads back from one call; failures of the program are statuses here.

    ``status`` is the run's own (``ok``, ``error`` for a non-zero exit, ``timeout``,
    ``memory_limit``, ``output_limit``, ``cancelled``) or ``not_run`` when the service did not
    run the code; then ``error_code`` and ``message`` say why.
    """

    model_config = ConfigDict(frozen=True)

    status: ToolStatus
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    wall_time_s: float | None = None
    message: str = ""
    error_code: str | None = None
    session_renewed: bool = False

    @classmethod
    def from_execution(cls, execution: Execution) -> CodeToolResult:
        """The result of a final execution."""
        run = execution.result
        if execution.state == "failed" or run is None:
            error = execution.error
            return cls(
                status="not_run",
                error_code=error.code if error else execution.state,
                message=error.message if error and error.message else "the code did not run",
            )
        return cls(
            status=run.status,
            exit_code=run.exit_code,
            stdout=run.stdout,
            stderr=run.stderr,
            truncated=run.stdout_truncated or run.stderr_truncated,
            wall_time_s=run.wall_time_s,
            message=run.message,
        )

    @classmethod
    def refused(cls, error: AgentClientError) -> CodeToolResult:
        """The result of a request the service refused or could not take."""
        code = error.code if isinstance(error, ServiceError) else type(error).__name__
        message = error.message if isinstance(error, ServiceError) else str(error)
        return cls(status="not_run", error_code=code, message=message)


class SandboxCodeRunner:
    """Runs tool calls on the service, each in a fresh sandbox or in sessions kept across calls.

    Every call opens its own ``ExecutionClient``: frameworks call tools from different event
    loops (LangChain's sync ``invoke`` starts one per call), and an HTTP connection pool cannot
    move between loops. With ``session=True`` the first call in a language opens a session
    (the service binds a session to one language) and later calls reuse it; ``aclose`` deletes
    them, and the service reaps any left idle past ``idle_timeout_s``. A session the service
    ended is replaced once per call, and the result says so (``session_renewed``).

    Args:
        service_url: the service's root, e.g. ``http://127.0.0.1:8000``.
        api_key: the tenant's key.
        language: the language of calls that name none.
        policy: the service policy to run under; None uses the key's default.
        limits: tighter limits for every run (wall time, memory, ...).
        session: keep a workspace across calls.
        idle_timeout_s: the sessions' idle timeout (None: the service's default).
        result_wait_s: how long to wait for one run before cancelling it; a safety net above
            the policy's own wall-time limit.
        max_attempts: tries per call while the service is busy, over quota or unreachable.
        http_timeout_s: the timeout of each HTTP request.
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
        max_attempts: int = 5,
        http_timeout_s: float = 30.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._service_url = service_url
        self._api_key = api_key
        self.language = language
        self.policy = policy
        self._limits = limits
        self.session = session
        self._idle_timeout_s = idle_timeout_s
        self._result_wait_s = result_wait_s
        self._max_attempts = max_attempts
        self._http_timeout_s = http_timeout_s
        self._sessions: dict[str, str] = {}
        # A thread lock, not an asyncio one: calls may come from several event loops. It is
        # never held across an await.
        self._sessions_lock = threading.Lock()

    @property
    def session_ids(self) -> dict[str, str]:
        """Open sessions by language."""
        with self._sessions_lock:
            return dict(self._sessions)

    def _client(self) -> ExecutionClient:
        return ExecutionClient(self._service_url, self._api_key, timeout=self._http_timeout_s)

    async def run(self, code: str, language: str | None = None) -> CodeToolResult:
        """Run one program and describe what it did.

        Raises:
            Unauthorized: the API key is wrong.
            PolicyNotAllowed: the key may not use the configured policy.
            asyncio.CancelledError: the call was cancelled (the execution is cancelled first).
        """
        language = language or self.language
        async with self._client() as client:
            try:
                return await self._run(client, code, language)
            except _CONFIGURATION_ERRORS:
                raise
            except AgentClientError as exc:
                logger.warning("sandbox tool call not run: %s", exc)
                return CodeToolResult.refused(exc)

    async def _run(self, client: ExecutionClient, code: str, language: str) -> CodeToolResult:
        renewed = False
        while True:
            session_id = await self._session_for(client, language) if self.session else None
            try:
                execution = await self._submit(client, code, language, session_id)
            except _SESSION_GONE:
                if session_id is None or renewed:
                    raise
                self._forget(language, session_id)
                renewed = True
                continue
            try:
                execution = await self._final(client, execution)
            except WaitTimeout:
                return CodeToolResult(
                    status="timeout",
                    message=(
                        f"No result after {self._result_wait_s:g}s; the execution was cancelled."
                    ),
                    session_renewed=renewed,
                )
            if _ended_before_run(execution) and session_id is not None and not renewed:
                # Admitted while the session was active, refused by the worker once it had
                # ended: the code never ran, so running it in a new session is safe.
                self._forget(language, session_id)
                renewed = True
                continue
            result = CodeToolResult.from_execution(execution)
            if renewed:
                notice = f"{SESSION_RENEWED_NOTICE} {result.message}".strip()
                result = result.model_copy(update={"session_renewed": True, "message": notice})
            return result

    async def _submit(
        self, client: ExecutionClient, code: str, language: str, session_id: str | None
    ) -> Execution:
        attempt = 0
        while True:
            try:
                return await client.submit(
                    language,
                    code,
                    policy=self.policy,
                    limits=self._limits,
                    session_id=session_id,
                    wait=True,
                    # Short holds keep server threads free; polling takes over after it.
                    wait_timeout_s=min(self._result_wait_s, 4.0),
                )
            except _RETRYABLE as exc:
                attempt += 1
                if attempt >= self._max_attempts:
                    raise
                pause = min(exc.retry_after_s or 0.2 * attempt, 5.0)
                logger.debug("service busy (%s); retrying in %.1fs", exc.code, pause)
                await asyncio.sleep(pause)

    async def _final(self, client: ExecutionClient, execution: Execution) -> Execution:
        """Wait for the execution; a timed-out or cancelled wait cancels it on the service.

        Raises:
            WaitTimeout: not final after ``result_wait_s`` (it has been cancelled).
        """
        if execution.is_final:
            return execution
        try:
            return await client.wait(execution.id, self._result_wait_s)
        except WaitTimeout:
            await _cancel_quietly(client, execution.id)
            raise
        except asyncio.CancelledError:
            await asyncio.shield(_cancel_quietly(client, execution.id))
            raise

    async def _session_for(self, client: ExecutionClient, language: str) -> str:
        with self._sessions_lock:
            known = self._sessions.get(language)
        if known is not None:
            return known
        created = await client.create_session(
            policy=self.policy, language=language, idle_timeout_s=self._idle_timeout_s
        )
        with self._sessions_lock:
            winner = self._sessions.setdefault(language, created.id)
        if winner != created.id:
            # Two first calls raced; keep one workspace so both see the same files.
            await _delete_quietly(client, created.id)
        return winner

    def _forget(self, language: str, session_id: str) -> None:
        with self._sessions_lock:
            if self._sessions.get(language) == session_id:
                del self._sessions[language]
        logger.info("%s session %s ended on the service", language, session_id)

    async def aclose(self) -> None:
        """Delete the sessions this runner opened; a no-op without any."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, {}
        if not sessions:
            return
        async with self._client() as client:
            for session_id in sessions.values():
                await _delete_quietly(client, session_id)


def _ended_before_run(execution: Execution) -> bool:
    return (
        execution.state == "failed"
        and execution.error is not None
        and execution.error.code == SessionEnded.code
    )


async def _cancel_quietly(client: ExecutionClient, execution_id: str) -> None:
    try:
        await client.cancel(execution_id)
    except ServiceError as exc:
        logger.warning("could not cancel execution %s: %s", execution_id, exc)


async def _delete_quietly(client: ExecutionClient, session_id: str) -> None:
    try:
        await client.delete_session(session_id)
    except NotFound:
        pass  # already expired on the service
    except ServiceError as exc:
        # The service reaps idle sessions itself; a failed delete must not mask the caller's end.
        logger.warning("could not delete session %s: %s", session_id, exc)
