"""AgentSandboxClient: the OpenAI Agents SDK's sandbox-agent backend on the sandbox service.

The SDK's ``SandboxAgent`` (``agents.sandbox``, 0.24) works in a workspace through a
``BaseSandboxClient`` that creates ``BaseSandboxSession``s: its shell tool runs commands with
``exec``, its file tools ``read`` and ``write``, and snapshots ``persist_workspace`` and
``hydrate_workspace``. Here one SDK session is one session of the service: every ``exec`` is
an execution in it, and files move through the session's file routes, so the SDK's commands
get the same hardened, network-less, time-limited sandbox as any other run::

    sandbox = SandboxRunConfig(client=AgentSandboxClient(service_url, api_key))
    run_config = RunConfig(sandbox=sandbox)
    result = await Runner.run(SandboxAgent(name="dev", ...), "task", run_config=run_config)

What the service cannot give is refused when the session is created, not halfway through a
run: a workspace root other than ``/workspace``, manifest users and groups (the sandbox has
one non-root user and no sudo) and host path grants; commands or file operations as another
user (``SandboxAgent.run_as``) are refused when asked. Not offered at all: exposed ports (the
sandbox has no network) and interactive processes (``supports_pty`` is False, so the SDK
gives no ``write_stdin`` tool: each command runs to its end, within the policy's wall-time
limit). Command output comes back as text (UTF-8); files move as bytes. The service writes
each command's launcher into the workspace as its program file (``main.py`` or ``main.sh``),
so the agent sees that file there.

The SDK marks none of this interface stable: providers of its own pin a minor version, and
so is this module written against 0.24.
"""

from __future__ import annotations

import io
import logging
import shlex
from pathlib import Path, PurePosixPath
from typing import Literal

try:
    from agents.sandbox import Manifest
    from agents.sandbox.errors import (
        ExecTimeoutError,
        ExecTransportError,
        WorkspaceArchiveReadError,
        WorkspaceArchiveWriteError,
        WorkspaceReadNotFoundError,
    )
    from agents.sandbox.session import (
        BaseSandboxClient,
        BaseSandboxClientOptions,
        BaseSandboxSession,
        SandboxSession,
        SandboxSessionState,
    )
    from agents.sandbox.snapshot import SnapshotBase, SnapshotSpec, resolve_snapshot
    from agents.sandbox.types import ExecResult, User
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "agent_client.adapters.openai_agents_sandbox needs the OpenAI Agents SDK (0.24): "
        "install it with `uv sync --extra openai-agents` "
        "(or `pip install 'agent-sandbox[openai-agents]'`)."
    ) from exc

from agent_client.errors import AgentClientError, NotFound, ServiceError, WaitTimeout
from agent_client.service.client import ExecutionClient
from agent_client.service.models import Execution

logger = logging.getLogger(__name__)

BACKEND_ID = "agent_sandbox"
WORKSPACE_ROOT = "/workspace"
_SNAPSHOT_ARCHIVE = ".agents-workspace.tar"

SessionLanguage = Literal["python", "bash"]


class AgentSandboxClientOptions(BaseSandboxClientOptions):
    """Per-session options (JSON round-trips with the SDK's run state).

    Args:
        policy: the service policy to run under; None uses the key's default.
        language: the service language of the session, which picks its image: ``python``
            (Python with bash and common tools: each command is exec'd by a two-line Python
            launcher) or ``bash`` (the policy's shell image, lighter, often without Python).
        idle_timeout_s: the service session's idle timeout (None: the service's default).
        exec_timeout_s: how long one command may take before it is cancelled, a safety net
            above the policy's own wall-time limit (a command's own ``timeout`` is tighter).
    """

    type: Literal["agent_sandbox"] = "agent_sandbox"
    policy: str | None = None
    language: SessionLanguage = "python"
    idle_timeout_s: float | None = None
    exec_timeout_s: float = 300.0


class AgentSandboxSessionState(SandboxSessionState):
    """What resuming a session needs: the service session and the options it was made with."""

    type: Literal["agent_sandbox"] = "agent_sandbox"
    service_session_id: str
    policy: str | None = None
    language: SessionLanguage = "python"
    idle_timeout_s: float | None = None
    exec_timeout_s: float = 300.0


class AgentSandboxSession(BaseSandboxSession):
    """One service session behind the SDK's session interface.

    The service URL and key live here, never in ``state``, which the SDK serializes.
    """

    state: AgentSandboxSessionState

    def __init__(self, *, state: AgentSandboxSessionState, service_url: str, api_key: str) -> None:
        self.state = state
        self._service_url = service_url
        self._api_key = api_key

    def _prepare_exec_command(
        self, *command: str | Path, shell: bool | list[str], user: str | User | None
    ) -> list[str]:
        _refuse_user(user)  # the SDK would prefix sudo, which the sandbox does not have
        return super()._prepare_exec_command(*command, shell=shell, user=user)

    def _client(self) -> ExecutionClient:
        # One client per operation: the SDK may drive a session from more than one event loop
        # (Runner.run_sync), and a connection pool cannot move between loops.
        return ExecutionClient(self._service_url, self._api_key)

    async def _exec_internal(
        self,
        *command: str | Path,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK's abstract signature
    ) -> ExecResult:
        argv = [str(part) for part in command]
        if not argv:
            raise ValueError("exec needs a command")
        environment = await self.state.manifest.environment.resolve()
        code = _program(self.state.language, argv, environment)
        wait_s = (
            self.state.exec_timeout_s
            if timeout is None
            else min(timeout, self.state.exec_timeout_s)
        )
        try:
            async with self._client() as client:
                execution = await client.submit(
                    self.state.language,
                    code,
                    policy=self.state.policy,
                    session_id=self.state.service_session_id,
                    wait=True,
                    wait_timeout_s=min(wait_s, 4.0),
                )
                if not execution.is_final:
                    execution = await _wait_or_cancel(client, execution, wait_s)
        except WaitTimeout as exc:
            raise ExecTimeoutError(command=argv, timeout_s=wait_s, cause=exc) from exc
        except AgentClientError as exc:
            raise ExecTransportError(command=argv, cause=exc, message=str(exc)) from exc
        return _exec_result(argv, execution, wait_s)

    async def read(self, path: Path, *, user: str | User | None = None) -> io.IOBase:
        _refuse_user(user)
        relative = self._relative(path)
        try:
            async with self._client() as client:
                data = await client.download(self.state.service_session_id, relative)
        except NotFound as exc:
            raise WorkspaceReadNotFoundError(path=path, cause=exc) from exc
        except AgentClientError as exc:
            raise WorkspaceArchiveReadError(path=path, cause=exc) from exc
        return io.BytesIO(data)

    async def write(self, path: Path, data: io.IOBase, *, user: str | User | None = None) -> None:
        _refuse_user(user)
        relative = self._relative(path, for_write=True)
        payload = data.read()
        content = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        try:
            async with self._client() as client:
                await client.upload(self.state.service_session_id, relative, content)
        except AgentClientError as exc:
            raise WorkspaceArchiveWriteError(path=path, cause=exc) from exc

    def _relative(self, path: Path | str, *, for_write: bool = False) -> str:
        """The path the service's file routes take: relative to the workspace."""
        absolute = PurePosixPath(self.normalize_path(path, for_write=for_write).as_posix())
        return absolute.relative_to(WORKSPACE_ROOT).as_posix()

    async def running(self) -> bool:
        try:
            async with self._client() as client:
                session = await client.get_session(self.state.service_session_id)
        except ServiceError:
            return False
        return session.state == "active"

    async def persist_workspace(self) -> io.IOBase:
        """The workspace as a tar archive (made in the sandbox, fetched as a file)."""
        skipped = [
            _SNAPSHOT_ARCHIVE,
            *(p.as_posix() for p in self._persist_workspace_skip_relpaths()),
        ]
        excludes = [f"--exclude=./{path}" for path in sorted(skipped)]
        made = await self.exec("tar", "-cf", _SNAPSHOT_ARCHIVE, *excludes, ".", shell=False)
        if not made.ok():
            raise WorkspaceArchiveReadError(
                path=Path(WORKSPACE_ROOT),
                context={"reason": "tar_failed", "stderr": made.stderr.decode(errors="replace")},
            )
        try:
            archive_file = await self.read(Path(WORKSPACE_ROOT) / _SNAPSHOT_ARCHIVE)
        finally:
            await self.exec("rm", "-f", _SNAPSHOT_ARCHIVE, shell=False)
        return archive_file

    async def hydrate_workspace(self, data: io.IOBase) -> None:
        """Unpack a tar archive from ``persist_workspace`` into the workspace."""
        await self.write(Path(WORKSPACE_ROOT) / _SNAPSHOT_ARCHIVE, data)
        unpack = 'tar -xf "$1" --no-same-owner; status=$?; rm -f "$1"; exit $status'
        unpacked = await self.exec("sh", "-c", unpack, "sh", _SNAPSHOT_ARCHIVE, shell=False)
        if not unpacked.ok():
            raise WorkspaceArchiveWriteError(
                path=Path(WORKSPACE_ROOT),
                context={
                    "reason": "untar_failed",
                    "stderr": unpacked.stderr.decode(errors="replace"),
                },
            )


class AgentSandboxClient(BaseSandboxClient[AgentSandboxClientOptions | None]):
    """Creates, resumes and deletes ``SandboxAgent`` sessions on the sandbox service.

    Args:
        service_url: the service's root, e.g. ``http://127.0.0.1:8000``.
        api_key: the tenant's key (kept here, never in the serialized session state).
    """

    backend_id = BACKEND_ID
    supports_default_options = True

    def __init__(self, service_url: str, api_key: str) -> None:
        self._service_url = service_url
        self._api_key = api_key

    async def create(
        self,
        *,
        snapshot: SnapshotSpec | SnapshotBase | None = None,
        manifest: Manifest | None = None,
        options: AgentSandboxClientOptions | None = None,
    ) -> SandboxSession:
        """Open a service session for a new SDK session.

        Raises:
            ValueError: the manifest asks for something the service cannot give.
            ServiceError: the service refused the session (quota, policy, key).
        """
        options = options or AgentSandboxClientOptions()
        manifest = self._validate_manifest_for_create(_supported(manifest or Manifest()))
        async with ExecutionClient(self._service_url, self._api_key) as client:
            service_session = await client.create_session(
                policy=options.policy,
                language=options.language,
                idle_timeout_s=options.idle_timeout_s,
            )
        state = AgentSandboxSessionState(
            manifest=manifest,
            snapshot=resolve_snapshot(snapshot, service_session.id),
            service_session_id=service_session.id,
            policy=options.policy,
            language=options.language,
            idle_timeout_s=options.idle_timeout_s,
            exec_timeout_s=options.exec_timeout_s,
        )
        return self._wrap_session(self._session(state))

    async def delete(self, session: SandboxSession) -> SandboxSession:
        """Delete the service session; one already gone is not an error."""
        inner = session._inner
        if not isinstance(inner, AgentSandboxSession):
            raise TypeError("AgentSandboxClient.delete expects an AgentSandboxSession")
        try:
            async with ExecutionClient(self._service_url, self._api_key) as client:
                await client.delete_session(inner.state.service_session_id)
        except NotFound:
            pass
        except ServiceError as exc:
            # The service reaps idle sessions itself; a failed delete must not mask the end.
            logger.warning("could not delete session %s: %s", inner.state.service_session_id, exc)
        return session

    async def resume(self, state: SandboxSessionState) -> SandboxSession:
        """Reattach to the service session in ``state``, or open a new one if it has ended.

        A new session starts empty; the SDK restores the workspace into it from the state's
        snapshot, if the run configured one.
        """
        if not isinstance(state, AgentSandboxSessionState):
            raise TypeError("AgentSandboxClient.resume expects an AgentSandboxSessionState")
        state.assert_path_grants_rebound()
        async with ExecutionClient(self._service_url, self._api_key) as client:
            try:
                alive = (await client.get_session(state.service_session_id)).state == "active"
            except NotFound:
                alive = False
            if not alive:
                replacement = await client.create_session(
                    policy=state.policy,
                    language=state.language,
                    idle_timeout_s=state.idle_timeout_s,
                )
                state.service_session_id = replacement.id
                state.workspace_root_ready = False
        inner = self._session(state)
        inner._set_start_state_preserved(alive, system=alive)
        return self._wrap_session(inner)

    def deserialize_session_state(self, payload: dict[str, object]) -> SandboxSessionState:
        return self._deserialize_session_state_payload(payload, AgentSandboxSessionState)

    def _session(self, state: AgentSandboxSessionState) -> AgentSandboxSession:
        return AgentSandboxSession(
            state=state, service_url=self._service_url, api_key=self._api_key
        )


def _supported(manifest: Manifest) -> Manifest:
    """The manifest, if the service can honour it; else a ValueError saying what to drop."""
    if PurePosixPath(manifest.root) != PurePosixPath(WORKSPACE_ROOT):
        raise ValueError(
            f"the sandbox service's workspace is {WORKSPACE_ROOT}: set Manifest(root="
            f"{WORKSPACE_ROOT!r}) (got {manifest.root!r})"
        )
    if manifest.users or manifest.groups:
        raise ValueError(
            "the sandbox service runs code as one non-root user without sudo: "
            "drop the manifest's users and groups"
        )
    if any(grant.host_path is not None for grant in manifest.extra_path_grants):
        raise ValueError("the sandbox service cannot mount host paths: drop the path grants")
    return manifest


def _program(language: SessionLanguage, argv: list[str], environment: dict[str, str]) -> str:
    """The code that runs ``argv`` as the session's one execution.

    Python replaces itself with the command (``execvpe``), so stdout, stderr and the exit code
    are the command's own and no shell quoting is involved; bash runs the quoted command line.
    """
    if language == "python":
        return (
            f"import os\nos.execvpe({argv[0]!r}, {argv!r}, {{**os.environ, **{environment!r}}})\n"
        )
    assignments = " ".join(shlex.quote(f"{k}={v}") for k, v in environment.items())
    return f"env -- {assignments} {shlex.join(argv)}" if environment else shlex.join(argv)


def _refuse_user(user: str | User | None) -> None:
    if user is not None:
        raise ValueError(
            "the sandbox service runs code as one non-root user: file operations as "
            f"{user!r} are not supported (leave SandboxAgent.run_as unset)"
        )


async def _wait_or_cancel(
    client: ExecutionClient, execution: Execution, wait_s: float
) -> Execution:
    try:
        return await client.wait(execution.id, wait_s)
    except WaitTimeout:
        try:
            await client.cancel(execution.id)
        except ServiceError as exc:
            logger.warning("could not cancel execution %s: %s", execution.id, exc)
        raise


def _exec_result(argv: list[str], execution: Execution, wait_s: float) -> ExecResult:
    run = execution.result
    if execution.state == "failed" or run is None:
        reason = execution.error.message if execution.error else execution.state
        raise ExecTransportError(command=argv, message=f"the command did not run: {reason}")
    if run.status == "timeout":
        raise ExecTimeoutError(command=argv, timeout_s=run.wall_time_s or wait_s)
    stderr = run.stderr
    if run.status != "ok" and run.message:
        # Out of memory, output cut: say so where the model reads errors.
        stderr = f"{stderr}\n[{run.message}]" if stderr else f"[{run.message}]"
    return ExecResult(
        stdout=run.stdout.encode("utf-8"),
        stderr=stderr.encode("utf-8"),
        exit_code=run.exit_code if run.exit_code is not None else 1,
    )
