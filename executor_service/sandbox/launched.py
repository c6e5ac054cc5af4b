"""Runs handed to a process already waiting in the sandbox, instead of an `exec` each.

A pool member's launcher waits for its one job on the stream attached before its start (see
launcher.py); a session's launcher and an interpreter session's kernel bridge (kernel_bridge.py)
are residents, started by one exec the first time this worker process runs code in the session
and kept attached for the next run. This module owns those streams: it writes each job, reads
the answer up to its trailer, and after a single-use run lets go of the member's stream, which
ends the launcher and with it the container.
"""

from __future__ import annotations

import select
import socket
import threading
import time

from executor_service.errors import SandboxError
from executor_service.sandbox import workspace
from executor_service.sandbox.engine_errors import engine_errors
from executor_service.sandbox.exec_output import FrameDecoder, close_stream, feed, read_run
from executor_service.sandbox.kernel_bridge import (
    KERNEL_DIED,
    CellDecoder,
    CellReport,
    bridge_argv,
    cell_job,
    read_cell,
)
from executor_service.sandbox.launcher import LAUNCHER, LAUNCHER_COMMAND, Job, runs_in_process
from executor_service.sandbox.processes import STOPPED, ExecOutcome, Processes
from executor_service.sandbox.residents import Residents
from executor_service.sandbox.runner import OutputCallback, Sandbox
from executor_service.sandbox.spec import Limits, Program, RunStatus, SandboxConfig


class Launched:
    """The waiting launchers and kernel bridges of one runner, by sandbox id; thread-safe."""

    def __init__(self, processes: Processes) -> None:
        self._processes = processes
        # The attach streams of single-use sandboxes whose launcher waits: for its job, or,
        # once it has answered, for the stream's end.
        self._attached: dict[str, socket.socket] = {}
        self._attached_lock = threading.Lock()
        # Sessions' launchers waiting for their next job; interpreter sessions' kernel bridges
        # waiting for their next cell.
        self._launchers = Residents()
        self._bridges = Residents()

    def attach(self, sandbox_id: str, stream: socket.socket) -> None:
        """A new member's stream, attached before its start so nothing its launcher says is lost."""
        with self._attached_lock:
            self._attached[sandbox_id] = stream

    def waiting(self, sandbox_id: str) -> bool:
        """Whether a member's launcher still waits for its job. It says nothing while it waits,
        so anything on its stream (end of file, above all) means it died."""
        with self._attached_lock:
            raw = self._attached.get(sandbox_id)
        if raw is None:
            return False
        readable, _, _ = select.select([raw], [], [], 0)
        return not readable

    def let_go(self, sandbox_id: str, *, wait_s: float) -> bool:
        """End a single-use sandbox's stream after its run; False if this runner held none.

        Its stdin is closed first (the container has StdinOnce): a launcher that answered its
        job then exits, and the container with it, which the engine says by ending the stream.
        That end is awaited here, for at most `wait_s`, so that a removal after it finds the
        container stopped (no kill) without asking the engine.
        """
        with self._attached_lock:
            raw = self._attached.pop(sandbox_id, None)
        if raw is None:
            return False
        try:
            raw.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + wait_s
            while (left := deadline - time.monotonic()) > 0:
                if select.select([raw], [], [], left)[0] and not raw.recv(65536):
                    break
        except OSError:
            pass  # the stream is gone already: so is the launcher
        finally:
            close_stream(raw)
        return True

    def drop(self, sandbox_id: str) -> None:
        """The sandbox is being removed: close every stream held for it."""
        with self._attached_lock:
            raw = self._attached.pop(sandbox_id, None)
        if raw is not None:
            close_stream(raw)
        self._launchers.drop(sandbox_id)
        self._bridges.drop(sandbox_id)

    def launch(
        self,
        sandbox: Sandbox,
        program: Program,
        on_output: OutputCallback | None,
        cancel: threading.Event | None,
    ) -> ExecOutcome:
        """Hand a pooled sandbox's launcher its one job on the stream attached at its start.

        The run ends with the launcher's trailer (the exit code, under this job's nonce); if the
        stream ends without one, the launcher died with the container, whose exit code stands.
        """
        with self._attached_lock:
            raw = self._attached.pop(sandbox.id, None)
        if raw is None:
            raise SandboxError(f"sandbox {sandbox.id[:12]} has no launcher waiting")
        limits = sandbox.config.limits
        try:
            job, encoded = _job(program)
        except SandboxError:
            raw.close()  # `run` removes the sandbox
            raise
        decoder, stopped, wall_time_s = _answer(raw, job, encoded, limits, on_output, cancel)
        exit_code = None
        if stopped is None:
            if decoder.trailer is not None:
                exit_code = job.exit_code(decoder.trailer)
                # Still open: the launcher waits on it until `let_go`.
                with self._attached_lock:
                    self._attached[sandbox.id] = raw
            else:
                exit_code = self._processes.exit_code(sandbox.id)
        return ExecOutcome(decoder, exit_code, stopped, wall_time_s)

    def session_launch(
        self,
        sandbox: Sandbox,
        program: Program,
        on_output: OutputCallback | None,
        cancel: threading.Event | None,
    ) -> ExecOutcome:
        """Run a session's program through a launcher kept waiting in its sandbox.

        One `exec` starts the launcher (`launcher.py`, session mode) as the code's uid the first
        time this process runs code in the session; later runs only write a job on its stream,
        which saves the exec (~60 ms) and, for Python, the interpreter's start. After each job
        the launcher kills what the program left running and answers with a trailer. A run cut
        short is stopped from outside as on the exec path, which ends the launcher too; so does
        the code killing it (it can: same uid; it harms only its own session): the next run
        starts another. Another worker process starts its own: each kills the other's with the
        program's leftovers, which only costs an exec.
        """
        resident = self._launchers.take(sandbox.id) or self._processes.start_resident(
            sandbox, [LAUNCHER_COMMAND, "-c", LAUNCHER, "session"]
        )
        raw, exec_id = resident.stream, resident.exec_id
        limits = sandbox.config.limits
        try:
            job, encoded = _job(program)
        except SandboxError:
            self._launchers.keep(sandbox.id, resident)
            raise
        decoder, stopped, wall_time_s = _answer(raw, job, encoded, limits, on_output, cancel)
        if stopped is None and decoder.trailer is not None:
            self._launchers.keep(sandbox.id, resident)
            return ExecOutcome(
                decoder, job.exit_code(decoder.trailer), None, wall_time_s, cleaned=True
            )
        close_stream(raw)
        exit_code = None
        if stopped is None:  # the stream ended with no trailer: the launcher died (OOM, killed)
            for _ in range(40):  # the engine may not have seen the exit yet
                ended_now, exit_code = self._processes.exec_ended(sandbox.id, exec_id)
                if ended_now:
                    break
                time.sleep(0.025)
        return ExecOutcome(decoder, exit_code, stopped, wall_time_s)

    def cell(
        self,
        sandbox: Sandbox,
        program: Program,
        code: str,
        on_output: OutputCallback | None,
        cancel: threading.Event | None,
    ) -> ExecOutcome:
        """Run an interpreter session's cell in its kernel, through the kernel bridge.

        The bridge (kernel_bridge.py) is started like a session's launcher, once per worker
        process, and kept attached. A cell cut short is interrupted, not killed: the kernel and
        its variables survive. Only when the bridge does not answer the interrupt (code that
        ignores SIGINT) or has ended are the session's processes killed, the kernel with them;
        the next cell then gets a new kernel, and its result says so.
        """
        if sandbox.single_use:
            raise SandboxError("a cell runs only in an interpreter session's sandbox")
        resident = self._bridges.take(sandbox.id) or self._processes.start_resident(
            sandbox, bridge_argv()
        )
        raw = resident.stream
        limits = sandbox.config.limits
        files = {workspace.safe_relative_path(p): data for p, data in program.files.items()}
        job = cell_job(files)
        decoder = CellDecoder(limits.output_bytes, on_output, job.nonce)
        try:
            # Written whole before reading: the bridge reads the whole job before it says
            # anything, and an interrupt byte must never land inside the job.
            with engine_errors():
                raw.sendall(job.encode(code.encode()))
            stopped, answered, wall_time_s = read_cell(raw, decoder, limits.wall_time_s, cancel)
        except BaseException:
            close_stream(raw)
            raise
        if answered and decoder.report is not None:
            self._bridges.keep(sandbox.id, resident)
            report = decoder.report
            if stopped is None and report.status == KERNEL_DIED:
                # The kernel died with its cell: judged by its exit code, not cut short.
                return ExecOutcome(decoder, report.exit_code, None, wall_time_s, True, report)
            return ExecOutcome(decoder, report.exit_code, stopped, wall_time_s, True, report)
        close_stream(raw)
        if stopped is None:  # the bridge ended by itself (killed by the code, say)
            lost = CellReport(KERNEL_DIED, None, (), interrupted=False, dropped=0, notice="")
            return ExecOutcome(decoder, None, None, wall_time_s, True, lost)
        # No answer to the interrupt: `_result` stops the session's processes, the kernel too.
        return ExecOutcome(decoder, None, stopped, wall_time_s)


def cell_verdict(
    report: CellReport, status: RunStatus, message: str, oom_kills: int
) -> tuple[RunStatus, str]:
    """A cell's status and message: a cut-short cell was interrupted, not killed, and a kernel
    that died is said to have, with what the next cell gets."""
    if status in STOPPED and report.interrupted:
        message = message.replace("; killed", "").replace(" and killed", "")
        message += "; the cell was interrupted and the kernel kept its state"
    elif report.status == "error" and status is RunStatus.ERROR and report.exit_code == 1:
        message = "the cell raised an exception (its traceback is on stderr)"
    elif report.status == KERNEL_DIED:
        cause = (
            "the memory limit was reached"
            if oom_kills > 0
            else f"it exited with code {report.exit_code}"
        )
        status = RunStatus.MEMORY_LIMIT if oom_kills > 0 else RunStatus.ERROR
        message = (
            f"the kernel died ({cause}); the next execution gets a new kernel, "
            "without the variables and imports of earlier cells"
        )
    if report.notice:
        message = f"{message}; {report.notice}" if message else report.notice
    if report.dropped:
        message += f"{'; ' if message else ''}{report.dropped} more displays were dropped"
    return status, message


def _job(program: Program) -> tuple[Job, bytes]:
    """A launcher's job for `program`, and its bytes (files by their checked paths)."""
    job = Job.create(
        program.argv,
        dict(program.env),
        {workspace.safe_relative_path(path): data for path, data in program.files.items()},
        python=runs_in_process(program.argv),
    )
    try:
        return job, job.encode(program.stdin)
    except ValueError as exc:
        raise SandboxError(f"the program cannot be started: {exc}") from exc


def _answer(
    raw: socket.socket,
    job: Job,
    encoded: bytes,
    limits: Limits,
    on_output: OutputCallback | None,
    cancel: threading.Event | None,
) -> tuple[FrameDecoder, RunStatus | None, float]:
    """Write a launcher its job and read the answer up to the trailer, which leaves the stream
    open (the launcher waits on it, for its next job or for its end): the decoder, and whether
    and when the run was cut short."""
    decoder = _send_job(raw, job, encoded, limits.output_bytes, on_output)
    ended = lambda: decoder.trailer is not None  # noqa: E731
    stopped, wall_time_s = read_run(
        raw, decoder, limits.wall_time_s, cancel, None, until=ended, keep_open=True
    )
    decoder.finish()
    return decoder, stopped, wall_time_s


def _send_job(
    raw: socket.socket, job: Job, encoded: bytes, cap: int, on_output: OutputCallback | None
) -> FrameDecoder:
    """Write the job and give the decoder that reads its answer, the trailer under the job's
    nonce taken out.

    What the socket takes at once is written here (a typical job is a few hundred bytes: no
    thread to start); the rest in the background, since the caller must read meanwhile (a
    launcher that died mid-job, or a stream that stalls, is cut by the run's own deadline).
    """
    sent = 0
    try:
        sent = raw.send(encoded, socket.MSG_DONTWAIT)
    except BlockingIOError:
        pass
    except OSError:
        sent = len(encoded)  # the stream is gone: the read says how the run ended
    if sent < len(encoded):
        rest = encoded[sent:]
        threading.Thread(
            target=feed, args=(raw, rest), kwargs={"half_close": False}, daemon=True
        ).start()
    return FrameDecoder(cap, on_output, is_trailer=lambda line: job.exit_code(line) is not None)


def launchable(config: SandboxConfig) -> bool:
    """Whether a single-use sandbox of `config` can wait with the launcher: its image has Python
    and it has no way out (a sandbox with egress runs the relay as its main process)."""
    return config.ready_python and config.egress_dir is None
