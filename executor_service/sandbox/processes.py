"""Processes in a started sandbox, through the engine's exec API, as the code's user.

One program run to its end (`exec`: workspace housekeeping, code on the keeper's path, killing
what a run left behind), or a resident started once to wait for jobs (a session's launcher, an
interpreter session's kernel bridge); and what the engine says of how they ended. Wall time,
cancellation and the output cap are read_run's, on the stream each returns.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from executor_service.sandbox.engine import Engine, EngineNotFound, container_path
from executor_service.sandbox.engine_errors import engine_errors
from executor_service.sandbox.exec_output import FrameDecoder, feed, read_run
from executor_service.sandbox.hardening import WORKSPACE, code_uid_from_label, user
from executor_service.sandbox.kernel_bridge import CellReport
from executor_service.sandbox.residents import Resident
from executor_service.sandbox.runner import UID_LABEL, OutputCallback, Sandbox
from executor_service.sandbox.spec import RunStatus

# Code uids of sandboxes whose handles were rebuilt from an id, read from their label once each.
KNOWN_UIDS_MAX = 4096
# Runs we cut short; their container (or, in a session, their processes) is killed.
STOPPED = frozenset({RunStatus.TIMEOUT, RunStatus.CANCELLED, RunStatus.OUTPUT_LIMIT})


@dataclass
class ExecOutcome:
    decoder: FrameDecoder
    exit_code: int | None
    stopped: RunStatus | None  # set when we cut the run short: timeout, cancelled, output_limit
    wall_time_s: float
    cleaned: bool = False  # a launcher has killed what the program left running
    cell: CellReport | None = None  # an interpreter session's cell: what its kernel bridge said


class Processes:
    """The exec calls of one runner, and the code uids it learnt (one inspect per sandbox)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._known_uids: dict[str, int] = {}
        self._known_uids_lock = threading.Lock()

    def forget(self, sandbox_id: str) -> None:
        """The sandbox is gone: drop what was learnt of it."""
        with self._known_uids_lock:
            self._known_uids.pop(sandbox_id, None)

    def code_uid(self, sandbox: Sandbox) -> int:
        """The uid the sandbox's code runs as: the handle's, else its container's label.

        A handle rebuilt from the id alone (a session's, in another worker) costs one inspect
        the first time this process sees it; later runs find the uid here.
        """
        if sandbox.code_uid is not None:
            return sandbox.code_uid
        with self._known_uids_lock:
            known = self._known_uids.get(sandbox.id)
        if known is not None:
            return known
        with engine_errors():
            inspected = self._engine.call("GET", container_path(sandbox.id, "json"))
        labels = inspected["Config"].get("Labels") or {}
        uid = code_uid_from_label(labels.get(UID_LABEL))
        with self._known_uids_lock:
            while len(self._known_uids) >= KNOWN_UIDS_MAX:
                del self._known_uids[next(iter(self._known_uids))]
            self._known_uids[sandbox.id] = uid
        return uid

    def exec(
        self,
        sandbox: Sandbox,
        argv: Sequence[str],
        *,
        stdin: bytes | None,
        env: Mapping[str, str],
        wall_time_s: float,
        cap: int,
        on_output: OutputCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> ExecOutcome:
        """Run one process as the code's user, feeding stdin and reading output until it ends."""
        code_user = user(self.code_uid(sandbox))
        with engine_errors():
            exec_id = self._engine.call(
                "POST",
                container_path(sandbox.id, "exec"),
                body={
                    "AttachStdin": stdin is not None,
                    "AttachStdout": True,
                    "AttachStderr": True,
                    "Tty": False,
                    "Privileged": False,
                    "Cmd": list(argv),
                    "User": code_user,
                    "WorkingDir": WORKSPACE,
                    "Env": [f"{name}={value}" for name, value in env.items()],
                },
            )["Id"]
            # The engine hijacks the connection: the socket itself, to half-close stdin.
            start = {"Detach": False, "Tty": False}
            raw = self._engine.hijack(f"/exec/{exec_id}/start", body=start)
        decoder = FrameDecoder(cap, on_output)
        if stdin is not None:
            threading.Thread(target=feed, args=(raw, stdin), daemon=True).start()
        stopped, wall_time_s = read_run(
            raw, decoder, wall_time_s, cancel, lambda: self.exec_ended(sandbox.id, exec_id)[0]
        )
        exit_code = None
        if stopped is None:
            exit_code = self.exec_ended(sandbox.id, exec_id)[1]
        return ExecOutcome(decoder, exit_code, stopped, wall_time_s)

    def start_resident(self, sandbox: Sandbox, argv: list[str]) -> Resident:
        """Start a process that waits in the sandbox for jobs (see residents.py), attached."""
        with engine_errors():
            exec_id = self._engine.call(
                "POST",
                container_path(sandbox.id, "exec"),
                body={
                    "AttachStdin": True,
                    "AttachStdout": True,
                    "AttachStderr": True,
                    "Tty": False,
                    "Privileged": False,
                    "Cmd": argv,
                    "User": user(self.code_uid(sandbox)),
                    "WorkingDir": WORKSPACE,
                },
            )["Id"]
            start = {"Detach": False, "Tty": False}
            stream = self._engine.hijack(f"/exec/{exec_id}/start", body=start)
        return Resident(stream, str(exec_id))

    def exit_code(self, sandbox_id: str) -> int | None:
        """A container's exit code once it has stopped (waiting a little for the engine)."""
        with engine_errors():
            try:
                answer = self._engine.call("POST", container_path(sandbox_id, "wait"), timeout=2)
            except TimeoutError:
                return None
        return int(answer["StatusCode"])

    def exec_ended(self, sandbox_id: str, exec_id: str) -> tuple[bool, int | None]:
        """Whether an exec has ended, and its exit code once it has.

        The engine forgets the execs of a container that has stopped. Under gVisor reaching the
        memory limit stops the whole sandbox (the host kills gVisor's kernel, not the program), so
        an exec that vanished ends with its container's exit code: 137 after an OOM kill.
        """
        with engine_errors():
            try:
                state = self._engine.call("GET", f"/exec/{exec_id}/json")
            except EngineNotFound:
                container = self._engine.call("GET", container_path(sandbox_id, "json"))["State"]
                return True, None if container["Running"] else container["ExitCode"]
        return not state["Running"], state["ExitCode"]
