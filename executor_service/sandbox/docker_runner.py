"""The Docker backend of SandboxRunner: sandboxes' lifecycle, and runs from start to result.

Preparing a sandbox (create + start a hardened, idle container: ~170 ms) is kept apart from running
code in it, so a pool of pre-started single-use containers can hide the start cost. Code runs in
one of three ways: handed to a launcher or kernel bridge already waiting (launched.py), or in one
`exec` (processes.py) where the image has no Python. Wall time is enforced from outside by killing:
the whole container for a single-use sandbox, every process of the code's user for a session, and
a session run's leftover processes are killed when it ends. Workspace files travel through the
shell programs of `transfer`, one exec each. Only these modules and engine.py talk to the engine;
docker-py's objects and errors never leave them (engine_errors.py translates the errors).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import docker
import docker.errors
import requests.exceptions

from executor_service.errors import NotFound, SandboxError
from executor_service.sandbox import transfer, workspace
from executor_service.sandbox.cgroup import Usage, read_pids, read_usage
from executor_service.sandbox.collect import collect_files
from executor_service.sandbox.engine import (
    Engine,
    EngineError,
    EngineNotFound,
    container_path,
    create_body,
)
from executor_service.sandbox.engine_errors import engine_errors
from executor_service.sandbox.hardening import WORKSPACE, container_options, draw_code_uid
from executor_service.sandbox.launched import Launched, cell_verdict, launchable
from executor_service.sandbox.processes import STOPPED, ExecOutcome, Processes
from executor_service.sandbox.runner import (
    DEADLINE_LABEL,
    MANAGED_LABEL,
    MAX_LIST_ENTRIES,
    POOL_LABEL,
    FileListing,
    OutputCallback,
    PoolState,
    Sandbox,
    SandboxRunner,
)
from executor_service.sandbox.spec import (
    OutputFile,
    Program,
    RunResult,
    RunStatus,
    SandboxConfig,
)
from executor_service.settings import Settings

HOUSEKEEPING_TIMEOUT_S = 30.0
# How long a launched sandbox may take to stop by itself once its stream is let go (its launcher
# exits at once; a loaded engine takes a while to notice) before its removal kills it.
STOP_WAIT_S = 5.0
SIGKILL_EXIT = 137
# What gVisor's exec reports when the sandbox under it died ("waiting on PID ...: EOF").
EXEC_LOST_EXIT = 128
# The engine's record of an OOM kill that stopped a sandbox can trail its exit by a moment.
OOM_STATE_POLLS = 10
OOM_STATE_POLL_S = 0.05
logger = logging.getLogger(__name__)
# The tasks of an idle sandbox: the init process and the keeper.
IDLE_PIDS = 2
# Place the files (the first $1 bytes of stdin, a tar) in the workspace, then become the program;
# what is left of stdin is the program's own. Only for a single-use sandbox, whose workspace no code
# has touched yet (so holds no symlink): one tar beats a shell loop over many files.
PLACE_AND_RUN = (
    'head -c "$1" | tar -x -f - -C ' + WORKSPACE + " --no-same-owner || "
    '{ echo "sandbox: could not place the files in the workspace" >&2; exit 125; }; '
    'shift; exec "$@"'
)


class DockerRunner:
    """Hardened single-use and session sandboxes on a Docker engine."""

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        reap_grace_s: float = 60.0,
        instance: str = "default",
        engine: Engine | None = None,
    ) -> None:
        """`engine` carries the calls of every run (see engine.py); `client` the rarer ones.
        Both must reach the same engine: by default `engine` follows DOCKER_HOST, as
        docker.from_env() does."""
        self._client = client
        self._api = client.api
        self._engine = engine or Engine(None, self._api.api_version)
        self._grace_s = reap_grace_s
        self._instance = instance
        # What every listing filters on: this instance's sandboxes, never another deployment's.
        self._managed = f"{MANAGED_LABEL}={instance}"
        # A forced removal costs 150-300 ms; once the program has ended by itself the caller need
        # not wait for it. Runs cut short are still killed before `run` returns.
        self._removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sandbox-remove")
        self._processes = Processes(self._engine)
        self._launched = Launched(self._processes)

    def close(self) -> None:
        """Wait for background removals to finish (call before the process exits)."""
        self._removals.shutdown(wait=True)

    def warm(self, configs: list[SandboxConfig]) -> None:
        """No pool here: see pool.PooledRunner."""

    def pool_state(self) -> PoolState | None:
        return None

    def present_images(self, refs: Collection[str]) -> frozenset[str]:
        # One listing for them all (the janitor asks every sweep), not an inspection per image.
        if not refs:
            return frozenset()
        found = self._listed("/images/json", {"reference": list(refs)})
        tags = {tag for image in found for tag in image.get("RepoTags") or ()}
        return frozenset(ref for ref in refs if ref in tags or f"{ref}:latest" in tags)

    # -- lifecycle ---------------------------------------------------------------------------

    def prepare(
        self, config: SandboxConfig, *, single_use: bool = True, lifetime_s: float | None = None
    ) -> Sandbox:
        """A started sandbox. A single-use one whose image has Python and that has no way out
        waits with the launcher as a pool member does (one job on its stream, no `docker exec`,
        no interpreter start for Python code): a run that missed the pool costs what a pooled
        one does, not an exec and a wrapper more. Anything else waits with the keeper."""
        lifetime = config.limits.wall_time_s if lifetime_s is None else lifetime_s
        launched = single_use and launchable(config)
        return self._start(config, lifetime, single_use=single_use, launched=launched)

    def prepare_member(
        self, config: SandboxConfig, *, lifetime_s: float, labels: Mapping[str, str]
    ) -> Sandbox:
        """A single-use sandbox for a warm pool, started ahead of need.

        It carries only `labels` (the pool's), never a tenant's or an execution's. Where the image
        has Python its main process is the launcher, attached before it starts so nothing it says
        is lost; the job comes later, through `run`.
        """
        config = replace(config, labels=dict(labels), name=None)
        return self._start(config, lifetime_s, single_use=True, launched=launchable(config))

    def _start(
        self, config: SandboxConfig, lifetime_s: float, *, single_use: bool, launched: bool
    ) -> Sandbox:
        code_uid = draw_code_uid()
        options = container_options(
            config,
            deadline=time.time() + lifetime_s + self._grace_s,
            code_uid=code_uid,
            instance=self._instance,
            launcher=launched,
        )
        sandbox_id = self._create(options)
        try:
            if launched:
                with engine_errors():
                    stream = self._engine.hijack(
                        container_path(sandbox_id, "attach"),
                        query={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1},
                    )
                self._launched.attach(sandbox_id, stream)
            with engine_errors():
                self._engine.call("POST", container_path(sandbox_id, "start"))
        except BaseException:
            self.destroy(sandbox_id)
            raise
        return Sandbox(
            id=sandbox_id,
            config=config,
            single_use=single_use,
            code_uid=code_uid,
            launched=launched,
        )

    def _create(self, options: dict[str, Any]) -> str:
        """Create a container from `container_options` and return its id.

        docker-py's `containers.create` translates these keyword arguments, creates, then
        inspects the new container to build its object: a whole extra call (and a large JSON
        document to parse) on every sandbox's path. Its translation is reused; the inspect is not.
        """
        body, name = create_body(options, self._api.api_version)
        query = {"name": name} if name else None
        with engine_errors():
            created = self._engine.call("POST", "/containers/create", query=query, body=body)
        return str(created["Id"])

    def rename(self, sandbox_id: str, name: str) -> None:
        """Give a prepared container its run's name (a pool member, once it is handed out)."""
        with engine_errors():
            self._engine.call("POST", container_path(sandbox_id, "rename"), query={"name": name})

    def alive(self, sandbox: Sandbox) -> bool:
        """Whether a prepared sandbox can still take its run (a pool asks before handing out).

        A waiting launcher says nothing, so anything on its stream (end of file, above all)
        means it died; a keeper's container is asked of the engine.
        """
        if sandbox.launched:
            return self._launched.waiting(sandbox.id)
        try:
            state = self._engine.call("GET", container_path(sandbox.id, "json"))["State"]
        except (EngineError, OSError):
            return False
        return bool(state.get("Running"))

    def destroy(self, sandbox_id: str) -> None:
        self._launched.drop(sandbox_id)
        self._processes.forget(sandbox_id)
        try:
            self._engine.call("DELETE", container_path(sandbox_id), query={"force": 1, "v": 1})
        except EngineNotFound:
            return
        except EngineError as exc:
            if exc.status == 409:  # removal already in progress elsewhere
                return
            raise SandboxError(f"could not remove sandbox {sandbox_id[:12]}: {exc}") from exc
        except OSError as exc:
            raise SandboxError(f"could not remove sandbox {sandbox_id[:12]}: {exc}") from exc

    def destroy_labelled(self, labels: Mapping[str, str]) -> int:
        wanted = [self._managed] + [f"{key}={value}" for key, value in labels.items()]
        found = self._listed("/containers/json", {"label": wanted})
        for item in found:
            self.destroy(item["Id"])
        return len(found)

    def _listed(self, path: str, filters: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        """Every container (running or not) or image matching `filters`, asked on the engine
        connection the runs use: the janitor lists every few seconds, and docker-py's requests
        stack cost several times the call itself."""
        query = {"all": 1, "filters": json.dumps(filters)}
        with engine_errors():
            found: list[dict[str, Any]] = self._engine.call("GET", path, query=query) or []
        return found

    def reap(self, *, everything: bool = False) -> int:
        now = time.time()
        found = self._listed("/containers/json", {"label": [self._managed]})
        removed = 0
        for item in found:
            deadline = _float(item.get("Labels", {}).get(DEADLINE_LABEL))
            if everything or deadline is None or deadline < now:
                self.destroy(item["Id"])
                removed += 1
        return removed

    def reap_orphans(self, owner_alive: Callable[[str], bool]) -> int:
        """Remove pool members (idle or running) whose worker, named in POOL_LABEL, is gone."""
        found = self._listed("/containers/json", {"label": [self._managed, POOL_LABEL]})
        owners = {item.get("Labels", {}).get(POOL_LABEL, "") for item in found}
        gone = {owner for owner in owners if not owner_alive(owner)}
        removed = 0
        for item in found:
            if item.get("Labels", {}).get(POOL_LABEL, "") in gone:
                self.destroy(item["Id"])
                removed += 1
        return removed

    # -- running code --------------------------------------------------------------------------

    def run_once(
        self,
        config: SandboxConfig,
        program: Program,
        *,
        on_output: OutputCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        sandbox = self.prepare(config)
        return self.run(sandbox, program, on_output=on_output, cancel=cancel)

    def run(
        self,
        sandbox: Sandbox,
        program: Program,
        *,
        on_output: OutputCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        try:
            result = self._run(sandbox, program, on_output, cancel)
        except BaseException:
            if sandbox.single_use:
                self.destroy(sandbox.id)
            raise
        if sandbox.single_use and result.status not in STOPPED:
            self._removals.submit(self._remove_after_run, sandbox.id)
        return result

    def _remove_after_run(self, sandbox_id: str) -> None:
        """Remove a single-use sandbox whose run has ended.

        A launcher that answered its job waits on its stream: once we let go of it, the launcher
        exits and the container stops by itself, as a plain `docker run` does, so its removal
        costs the engine no kill. Not removed by the engine itself (AutoRemove): a container
        that ended otherwise (an OOM kill under gVisor, code that killed its launcher) must stay
        for its exit code and OOM state to be read.
        """
        self._launched.let_go(sandbox_id, wait_s=STOP_WAIT_S)  # then the removal kills it
        self._destroy_quietly(sandbox_id)

    def _destroy_quietly(self, sandbox_id: str) -> None:
        try:
            self.destroy(sandbox_id)
        except SandboxError:
            # The deadline label lets the reaper finish the job.
            logger.warning(
                "background removal of sandbox %s failed", sandbox_id[:12], exc_info=True
            )

    def _run(
        self,
        sandbox: Sandbox,
        program: Program,
        on_output: OutputCallback | None,
        cancel: threading.Event | None,
    ) -> RunResult:
        limits = sandbox.config.limits
        before = None if sandbox.single_use else self._usage(sandbox.id)
        if sandbox.launched:
            outcome = self._launched.launch(sandbox, program, on_output, cancel)
            return self._result(sandbox, program, outcome, before)
        if program.cell is not None:
            outcome = self._launched.cell(sandbox, program, program.cell, on_output, cancel)
            return self._result(sandbox, program, outcome, before)
        if not sandbox.single_use and sandbox.config.ready_python:
            outcome = self._launched.session_launch(sandbox, program, on_output, cancel)
            return self._result(sandbox, program, outcome, before)
        argv = list(program.argv)
        payload = b""
        if program.files and sandbox.single_use:
            payload = workspace.pack(program.files)
            argv = ["/bin/sh", "-c", PLACE_AND_RUN, "sandbox", str(len(payload)), *argv]
        elif program.files:
            # A session's earlier runs may have left symlinks: place the files as put_files does.
            placing = transfer.put_request(program.files, then_run=argv)
            argv, payload = placing.argv, placing.stdin
        outcome = self._processes.exec(
            sandbox,
            argv,
            stdin=payload + program.stdin if (program.files or program.stdin) else None,
            env=program.env,
            wall_time_s=limits.wall_time_s,
            cap=limits.output_bytes,
            on_output=on_output,
            cancel=cancel,
        )
        return self._result(sandbox, program, outcome, before)

    def _result(
        self, sandbox: Sandbox, program: Program, outcome: ExecOutcome, before: Usage | None
    ) -> RunResult:
        """Measure, stop what must stop, judge and collect: the same for every way of running."""
        usage = self._usage(sandbox.id)
        if outcome.stopped is not None and outcome.cell is None:  # (a cell was interrupted)
            self._stop_processes(sandbox)
        elif not (sandbox.launched or outcome.cleaned) and (
            not sandbox.single_use or program.collect
        ):
            # (A launcher has already killed what its job left behind.)
            self._end_leftovers(sandbox)
        oom_kills = usage.oom_kills - (before.oom_kills if before else 0)
        status, message = self._judge(outcome, sandbox, oom_kills)
        if outcome.cell is not None:
            status, message = cell_verdict(outcome.cell, status, message, oom_kills)
        files: tuple[OutputFile, ...] = ()
        if program.collect and outcome.stopped is None:
            files = self._collect(sandbox, program)
        decoder = outcome.decoder
        exit_code = outcome.exit_code
        if status is RunStatus.MEMORY_LIMIT and exit_code == EXEC_LOST_EXIT:
            exit_code = SIGKILL_EXIT  # what killed the program, not gVisor's lost exec
        return RunResult(
            status=status,
            exit_code=exit_code,
            stdout=decoder.stdout.text(),
            stderr=decoder.stderr.text(),
            stdout_truncated=decoder.stdout.truncated,
            stderr_truncated=decoder.stderr.truncated,
            wall_time_s=round(outcome.wall_time_s, 4),
            cpu_time_s=round(usage.cpu_time_s - (before.cpu_time_s if before else 0.0), 4)
            if usage.cpu_time_s
            else None,
            memory_peak_bytes=usage.memory_peak_bytes,
            files=files,
            message=message,
            outputs=outcome.cell.outputs if outcome.cell is not None else (),
        )

    def _judge(
        self, outcome: ExecOutcome, sandbox: Sandbox, oom_kills: int
    ) -> tuple[RunStatus, str]:
        limits = sandbox.config.limits
        if outcome.stopped is RunStatus.TIMEOUT:
            return outcome.stopped, f"wall time limit of {limits.wall_time_s} s reached; killed"
        if outcome.stopped is RunStatus.CANCELLED:
            return outcome.stopped, "cancelled; the run was killed"
        if outcome.stopped is RunStatus.OUTPUT_LIMIT:
            return outcome.stopped, f"output over {limits.output_bytes} bytes; cut and killed"
        if outcome.exit_code == 0:
            return RunStatus.OK, ""
        if outcome.exit_code in (SIGKILL_EXIT, EXEC_LOST_EXIT) and oom_kills > 0:
            return RunStatus.MEMORY_LIMIT, f"memory limit of {limits.memory_mb} MB reached; killed"
        return RunStatus.ERROR, f"exited with code {outcome.exit_code}"

    def _stop_processes(self, sandbox: Sandbox) -> None:
        """End a run cut short: a single-use sandbox entirely, a session's code processes only."""
        if sandbox.single_use:
            self.destroy(sandbox.id)
            return
        try:
            # kill(-1) spares the caller and the keeper (another uid); repeat to catch forks.
            for _ in range(3):
                self._processes.exec(
                    sandbox,
                    ["/bin/sh", "-c", "kill -KILL -1"],
                    stdin=None,
                    env={},
                    wall_time_s=HOUSEKEEPING_TIMEOUT_S,
                    cap=4096,
                )
        except SandboxError:
            # Even a fresh `exec` may be impossible (pids exhausted): then the session must go.
            self.destroy(sandbox.id)

    def _end_leftovers(self, sandbox: Sandbox) -> None:
        """Kill what a finished run left running (`sleep &`, a daemon), before anything else.

        Otherwise it would run on between a session's runs, outside every limit but pids and
        memory, and it could change files while they are collected. An exec costs ~60 ms, which
        would dominate a short session run, while the container's task count in its cgroup file
        costs microseconds: so the kill runs only when more tasks than an idle sandbox's init and
        keeper remain, and always when the count cannot be read (no host cgroupfs here, or gVisor,
        whose own threads count). Killing is `kill -KILL -1` as the code's user, which spares the
        keeper (another uid) and init; a sandbox where not even that can start (pids exhausted)
        cannot serve another run and is removed.
        """
        tasks = read_pids(sandbox.id)
        if tasks is not None and tasks <= IDLE_PIDS:
            return
        try:
            self._processes.exec(
                sandbox,
                ["/bin/sh", "-c", "kill -KILL -1; kill -KILL -1; kill -KILL -1"],
                stdin=None,
                env={},
                wall_time_s=HOUSEKEEPING_TIMEOUT_S,
                cap=4096,
            )
        except NotFound:
            return  # removed meanwhile (the reaper, a delete): nothing is left to run
        except SandboxError:
            if not sandbox.single_use:
                self.destroy(sandbox.id)

    def _usage(self, sandbox_id: str) -> Usage:
        """CPU seconds, peak memory and OOM kills so far: from the cgroup, else the engine."""
        usage = read_usage(sandbox_id)
        if usage is not None:
            return usage
        try:
            stats: dict[str, Any] = self._api.stats(sandbox_id, stream=False, one_shot=True)
            state = self._api.inspect_container(sandbox_id)["State"]
            # A sandbox that stopped under its run was killed (under gVisor, an OOM kill stops
            # the whole of it), and the engine may record the OOM a moment after the exit: ask
            # again, briefly, before judging without it.
            for _ in range(OOM_STATE_POLLS):
                if state.get("Running") or state.get("OOMKilled"):
                    break
                time.sleep(OOM_STATE_POLL_S)
                state = self._api.inspect_container(sandbox_id)["State"]
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return Usage(cpu_time_s=0.0, memory_peak_bytes=None, oom_kills=0)
        cpu_ns = stats.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage") or 0
        memory = stats.get("memory_stats", {})
        return Usage(
            cpu_time_s=cpu_ns / 1e9,
            memory_peak_bytes=memory.get("max_usage") or memory.get("usage"),
            oom_kills=1 if state.get("OOMKilled") else 0,
        )

    # -- workspace files -----------------------------------------------------------------------

    def put_files(self, sandbox: Sandbox, files: Mapping[str, bytes]) -> None:
        if not files:
            return
        request = transfer.put_request(files)
        outcome = self._housekeeping(sandbox, request.argv, stdin=request.stdin)
        refusal = transfer.parse_put(bytes(outcome.decoder.stdout.data), request.paths)
        if refusal is not None:
            raise refusal.write_error(outcome.decoder.stderr.text())

    def list_files(self, sandbox: Sandbox, *, max_entries: int = MAX_LIST_ENTRIES) -> FileListing:
        outcome = self._housekeeping(
            sandbox, transfer.list_argv(max_entries), cap=transfer.LIST_MAX_BYTES + 1
        )
        return transfer.parse_listing(bytes(outcome.decoder.stdout.data), max_entries=max_entries)

    def read_file(self, sandbox: Sandbox, path: str, *, max_bytes: int) -> bytes:
        [fetched] = self._fetch(sandbox, [workspace.safe_relative_path(path)], max_bytes=max_bytes)
        if fetched.refusal is not None:
            raise fetched.refusal.read_error()
        return fetched.content

    def _fetch(
        self, sandbox: Sandbox, paths: Sequence[str], *, max_bytes: int
    ) -> list[transfer.Fetched]:
        outcome = self._housekeeping(
            sandbox,
            transfer.fetch_argv(paths, max_bytes=max_bytes),
            cap=transfer.fetch_cap(len(paths), max_bytes),
        )
        return transfer.parse_fetch(bytes(outcome.decoder.stdout.data), paths, max_bytes=max_bytes)

    def _collect(self, sandbox: Sandbox, program: Program) -> tuple[OutputFile, ...]:
        return collect_files(
            program,
            list_files=lambda: self.list_files(sandbox),
            fetch=lambda paths, max_bytes: self._fetch(sandbox, paths, max_bytes=max_bytes),
        )

    def _housekeeping(
        self,
        sandbox: Sandbox,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        cap: int = 65536,
    ) -> ExecOutcome:
        outcome = self._processes.exec(
            sandbox, argv, stdin=stdin, env={}, wall_time_s=HOUSEKEEPING_TIMEOUT_S, cap=cap
        )
        if outcome.stopped is not None:
            raise SandboxError(f"workspace operation {argv[0]} did not finish ({outcome.stopped})")
        return outcome


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def create_runner(settings: Settings) -> DockerRunner:
    """A runner on the engine named by settings (or DOCKER_HOST / the local socket)."""
    with engine_errors():
        if settings.docker_url:
            client = docker.DockerClient(base_url=settings.docker_url)
        else:
            client = docker.from_env()
    try:
        engine = Engine(settings.docker_url, client.api.api_version)
    except ValueError as exc:
        raise SandboxError(str(exc)) from exc
    return DockerRunner(
        client, reap_grace_s=settings.reap_grace_s, instance=settings.instance, engine=engine
    )


def create_worker_runner(settings: Settings, owner: str) -> SandboxRunner:
    """A worker's runner: with a warm pool in front unless settings.pool_size is 0."""
    runner = create_runner(settings)
    if settings.pool_size == 0:
        return runner
    from executor_service.sandbox.pool import PooledRunner  # it builds on this module

    return PooledRunner(
        runner,
        owner=owner,
        size=settings.pool_size,
        idle_s=settings.pool_idle_s,
        max_keys=settings.pool_max_keys,
    )
