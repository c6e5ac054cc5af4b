"""The kernel bridge: an interpreter session's cells run in a Jupyter kernel inside its sandbox.

One `docker exec` as the code's uid starts BRIDGE (as a session's launcher is started) and keeps
its stream attached. The bridge starts an ipykernel in the sandbox, talking to it over ZeroMQ on
Unix sockets in /tmp/.kernel (mode 0700), and, for
each job read from its stdin (the launcher's job format: `launcher.Job`, the cell's code as its
stdin), places the job's files as the launcher does, sends an execute_request and relays what
the kernel says as it comes. The kernel is a process of the code's uid in the same cgroup: every
limit and hardening of the sandbox holds for it.

The bridge is the only writer of its stdout, in records: a kind byte, a decimal length, a newline
and the payload. `O` and `E` carry the cell's stdout and stderr text, `R` the cell's result as
JSON (this job's nonce, status, rich outputs, a notice). A byte `!` on its stdin asks it to
interrupt the running cell (SIGINT to the kernel): the worker sends it at the wall-time limit, and
the kernel and its variables survive. The one TCP socket is ipykernel's own pipe for output of
processes the cell forks, on 127.0.0.1 of the sandbox's own network namespace, which nothing
outside the sandbox can reach. A kernel that dies (out of memory, `os._exit`) is reported
in that cell's result, and the next cell gets a new kernel with a notice saying so. The kernel's
pid and connection file live in /tmp/.kernel, so a bridge started by another worker process
connects to the same kernel rather than starting a second one.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import select
import socket
import threading
import time
from dataclasses import dataclass

from pydantic import ValidationError

from executor_service.sandbox.exec_output import HEADER, STREAMS, FrameDecoder
from executor_service.sandbox.launcher import PLACEMENT, Job
from executor_service.sandbox.runner import OutputCallback
from executor_service.sandbox.spec import RichOutput, RunStatus

BRIDGE_COMMAND = "python3"
INTERRUPT = b"!"
# How long an interrupted cell may take to stop before the worker kills the kernel instead.
INTERRUPT_GRACE_S = 5.0
MAX_OUTPUTS = 16
MAX_TEXT_BYTES = 64 * 1024
MAX_PNG_BYTES = 1024 * 1024  # of the decoded image
# A result record larger than this is not the bridge's: taken as output lost.
MAX_RESULT_BYTES = MAX_OUTPUTS * (MAX_PNG_BYTES * 2 + MAX_TEXT_BYTES * 3)
# The cell statuses the bridge reports; the runner maps them onto RunStatus.
KERNEL_DIED = "died"

BRIDGE = (
    PLACEMENT
    + r"""
import base64, json, queue, select, shutil, signal, subprocess
HOME = "/tmp/.kernel"
CONN, PIDFILE, LOG = HOME + "/connection.json", HOME + "/pid", HOME + "/kernel.log"
MAX_OUTPUTS, MAX_TEXT, MAX_PNG = (int(arg) for arg in sys.argv[1:4])
def record(kind, data):
    view = memoryview(kind + str(len(data)).encode() + b"\n" + data)
    while view:
        view = view[os.write(1, view):]
def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False
class Kernel:
    # The session's one kernel: started here, or found running (another worker's bridge).
    def __init__(self):
        self.child, self.pid, self.client, self.notice = None, None, None, ""
    def ensure(self):
        if self.pid is not None and running(self.pid):
            return
        from jupyter_client import BlockingKernelClient
        from jupyter_client.connect import write_connection_file
        found = None
        try:
            with open(PIDFILE) as handle:
                found = int(handle.read())
        except (OSError, ValueError):
            pass
        if found is not None and found != self.pid and running(found):
            # Started (or restarted) by another worker process's bridge: share it.
            self.child, self.pid = None, found
        else:
            if found is not None and not self.notice:
                self.notice = ("the kernel was restarted: the previous one had ended, so "
                               "variables, imports and open files from earlier cells are gone")
            shutil.rmtree(HOME, ignore_errors=True)
            os.makedirs(HOME, mode=0o700, exist_ok=True)
            write_connection_file(CONN, transport="ipc", ip=HOME + "/k")
            env = dict(os.environ, IPYTHONDIR=HOME + "/ipython", JUPYTER_RUNTIME_DIR=HOME,
                       MPLBACKEND="module://matplotlib_inline.backend_inline")
            self.child = subprocess.Popen(
                [sys.executable, "-m", "ipykernel_launcher", "-f", CONN,
                 "--HistoryManager.enabled=False", "--InteractiveShell.colors=NoColor"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(LOG, "wb"),
                cwd="/workspace", env=env, start_new_session=True)
            self.pid = self.child.pid
            with open(PIDFILE, "w") as handle:
                handle.write(str(self.pid))
        self.client = BlockingKernelClient(connection_file=CONN)
        self.client.load_connection_file()
        self.client.start_channels(hb=False)
        # Not wait_for_ready: without a manager it trusts a heartbeat that is not beating yet.
        for _ in range(240):
            if not running(self.pid):
                raise RuntimeError("the kernel exited while starting")
            self.client.kernel_info()
            try:
                reply = self.client.get_shell_msg(timeout=0.25)
            except queue.Empty:
                continue
            if reply["msg_type"] == "kernel_info_reply":
                break
        else:
            raise RuntimeError("the kernel did not answer within 60 s")
        while True:  # its other answers to the probes
            try:
                self.client.get_shell_msg(timeout=0.2)
            except queue.Empty:
                break
    def exit_code(self):
        if self.child is not None and self.child.pid == self.pid:
            code = self.child.wait()
            return 128 - code if code < 0 else code
        return None
def capped_text(text):
    data = text.encode()
    return data[:MAX_TEXT].decode(errors="ignore"), len(data) > MAX_TEXT
def rich(data):
    found = []
    for mime in ("image/png", "text/html", "text/plain"):
        value = data.get(mime)
        if not isinstance(value, str):
            continue
        if mime == "image/png":
            value = value.replace("\n", "")
            size = len(base64.b64decode(value))
            over = size > MAX_PNG
            found.append({"mime_type": mime, "data": "" if over else value,
                          "truncated": over, "size_bytes": size})
        else:
            text, cut = capped_text(value)
            found.append({"mime_type": mime, "data": text, "truncated": cut,
                          "size_bytes": len(value.encode())})
    return found
def run_cell(kernel, code):
    kernel.ensure()
    client = kernel.client
    while True:  # the last cell's reply: its iopub messages said all this bridge needs
        try:
            client.get_shell_msg(timeout=0)
        except queue.Empty:
            break
    msg_id = client.execute(code, allow_stdin=False, stop_on_error=False)
    outputs, status, interrupted, dropped = [], "ok", False, 0
    while True:
        if select.select([0], [], [], 0)[0]:
            asked = os.read(0, 64)
            if not asked:
                raise SystemExit(0)
            if b"!" in asked and not interrupted:
                interrupted = True
                try:
                    os.kill(kernel.pid, signal.SIGINT)
                except OSError:
                    pass
        try:
            msg = client.get_iopub_msg(timeout=0.05)
        except queue.Empty:
            if not running(kernel.pid):
                code = kernel.exit_code()
                kernel.pid = None
                return {"status": "died", "exit_code": code, "outputs": outputs,
                        "interrupted": interrupted, "dropped": dropped}
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            record(b"O" if content.get("name") == "stdout" else b"E", content["text"].encode())
        elif kind in ("display_data", "execute_result"):
            for item in rich(content.get("data", {})):
                if len(outputs) < MAX_OUTPUTS:
                    outputs.append(item)
                else:
                    dropped += 1
        elif kind == "error":
            status = "error"
            record(b"E", ("\n".join(content.get("traceback", [])) + "\n").encode())
        elif kind == "status" and content.get("execution_state") == "idle":
            return {"status": status, "exit_code": 0 if status == "ok" else 1,
                    "outputs": outputs, "interrupted": interrupted, "dropped": dropped}
kernel = Kernel()
while True:
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(0, 1)
        if not byte:
            raise SystemExit(0)
        if byte != b"!" or line:  # a late interrupt request, after its cell ended
            line += byte
    fields = [field.decode() for field in read_exactly(int(line)).split(b"\0")]
    nonce, stdin_size, count = fields[0], int(fields[2]), int(fields[3])
    refused = None
    for i in range(count):
        path, data = fields[4 + 2 * i], read_exactly(int(fields[5 + 2 * i]))
        if refused is None:
            try:
                place(path, data)
            except OSError as exc:
                reason = REASONS.get(exc.errno, "it could not be written")
                refused = f"sandbox: could not place {path} in the workspace: {reason}\n"
    code = read_exactly(stdin_size).decode(errors="replace")
    if refused is not None:
        record(b"E", refused.encode())
        result = {"status": "error", "exit_code": 125, "outputs": [], "interrupted": False,
                  "dropped": 0}
    else:
        try:
            result = run_cell(kernel, code)
        except (RuntimeError, OSError) as exc:  # the kernel could not start
            kernel.pid = None
            try:
                with open(LOG, "rb") as handle:
                    said = handle.read()[-2000:].decode(errors="replace")
            except OSError:
                said = ""
            record(b"E", f"sandbox: the kernel did not start: {exc}\n{said}".encode())
            result = {"status": "died", "exit_code": None, "outputs": [], "interrupted": False,
                      "dropped": 0}
    result["nonce"], result["notice"], kernel.notice = nonce, kernel.notice, ""
    record(b"R", json.dumps(result).encode())
"""
)


def bridge_argv() -> list[str]:
    """The exec's command: the bridge with its caps."""
    caps = (MAX_OUTPUTS, MAX_TEXT_BYTES, MAX_PNG_BYTES)
    return [BRIDGE_COMMAND, "-c", BRIDGE, *(str(cap) for cap in caps)]


@dataclass(frozen=True)
class CellReport:
    """What the bridge said of one cell, beyond its output text."""

    status: str  # "ok", "error" or "died" (KERNEL_DIED)
    exit_code: int | None
    outputs: tuple[RichOutput, ...]
    interrupted: bool
    dropped: int  # rich outputs beyond MAX_OUTPUTS, counted only
    notice: str  # said when this cell got a new kernel


def cell_job(files: dict[str, bytes]) -> Job:
    """A cell as the launcher's job format carries it; encode it with the code as its stdin."""
    return Job.create(("cell",), {}, files, python=False)


class CellDecoder(FrameDecoder):
    """Split the bridge's records into the cell's stdout, stderr and its result.

    The bridge writes everything on stdout; what comes on stderr is the bridge's own failure
    (a traceback), passed on as the cell's stderr.
    """

    def __init__(self, cap: int, on_output: OutputCallback | None, nonce: str) -> None:
        super().__init__(cap, on_output)
        self.report: CellReport | None = None
        self._cell_output = on_output
        self._nonce = nonce
        self._frames = bytearray()
        self._records = bytearray()
        self.garbled = False

    def feed(self, data: bytes) -> None:
        self._frames += data
        while len(self._frames) >= HEADER.size:
            stream_id, length = HEADER.unpack_from(self._frames)
            end = HEADER.size + length
            if len(self._frames) < end:
                return
            payload = bytes(self._frames[HEADER.size : end])
            del self._frames[:end]
            name = STREAMS.get(stream_id)
            if name == "stderr":
                self._keep("stderr", payload)
            elif name == "stdout":
                self._records += payload
                self._parse()

    def finish(self) -> None:
        """Nothing is held back: a record cut short by the bridge's end is lost with it."""

    def _keep(self, name: str, payload: bytes) -> None:
        target = self.stdout if name == "stdout" else self.stderr
        kept = target.add(payload)
        if kept and self._cell_output is not None:
            self._cell_output("stdout" if name == "stdout" else "stderr", kept)

    def _parse(self) -> None:
        while not self.garbled:
            newline = self._records.find(b"\n", 0, 16)
            if newline == -1:
                self.garbled = len(self._records) >= 16
                return
            kind, digits = bytes(self._records[:1]), bytes(self._records[1:newline])
            if kind not in (b"O", b"E", b"R") or not digits.isdigit():
                self.garbled = True
                return
            size = int(digits)
            if kind == b"R" and size > MAX_RESULT_BYTES:
                self.garbled = True
                return
            if len(self._records) < newline + 1 + size:
                return
            payload = bytes(self._records[newline + 1 : newline + 1 + size])
            del self._records[: newline + 1 + size]
            if kind == b"R":
                self.report = _report(payload, self._nonce) or self.report
            else:
                self._keep("stdout" if kind == b"O" else "stderr", payload)


def _report(payload: bytes, nonce: str) -> CellReport | None:
    """The cell's result if `payload` is this job's; None for anything else."""
    try:
        answer = json.loads(payload)
        if not isinstance(answer, dict) or answer.get("nonce") != nonce:
            return None
        outputs = tuple(
            RichOutput(
                mime_type=item["mime_type"],
                data=base64.b64decode(item["data"], validate=True)
                if item["mime_type"] == "image/png"
                else item["data"].encode(),
                truncated=bool(item["truncated"]),
                size_bytes=int(item["size_bytes"]),
            )
            for item in answer["outputs"]
        )
        exit_code = answer["exit_code"]
        return CellReport(
            status=str(answer["status"]),
            exit_code=exit_code if isinstance(exit_code, int) else None,
            outputs=outputs,
            interrupted=bool(answer["interrupted"]),
            dropped=int(answer["dropped"]),
            notice=str(answer["notice"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error, ValidationError):
        return None


def read_cell(
    raw: socket.socket,
    decoder: CellDecoder,
    wall_time_s: float,
    cancel: threading.Event | None,
) -> tuple[RunStatus | None, bool, float]:
    """Read a cell's output until its result comes; interrupt it (not kill it) when cut short.

    At the wall-time limit, on a cancel or once the output is over its cap, the bridge is asked
    to interrupt the cell; its result still comes, and the kernel lives on. Returns why the cell
    was cut short (None if it was not), whether the bridge answered (False: it did not within
    INTERRUPT_GRACE_S of the request, or it ended, so the caller must stop the session's
    processes), and the wall time. The stream is left open.
    """
    started = time.monotonic()
    deadline = started + wall_time_s
    stopped: RunStatus | None = None
    while decoder.report is None and not decoder.garbled:
        now = time.monotonic()
        if stopped is None:
            reason = _cut_short(now, deadline, cancel, decoder)
            if reason is not None:
                stopped = reason
                deadline = now + INTERRUPT_GRACE_S
                _send_quietly(raw, INTERRUPT)
        if now >= deadline:
            return stopped or RunStatus.TIMEOUT, False, time.monotonic() - started
        readable, _, _ = select.select([raw], [], [], min(0.25, max(deadline - now, 0.0)))
        if not readable:
            continue
        data = raw.recv(65536)
        if not data:
            return stopped, False, time.monotonic() - started
        decoder.feed(data)
    return stopped, decoder.report is not None, time.monotonic() - started


def _cut_short(
    now: float, deadline: float, cancel: threading.Event | None, decoder: FrameDecoder
) -> RunStatus | None:
    if cancel is not None and cancel.is_set():
        return RunStatus.CANCELLED
    if decoder.over_cap:
        return RunStatus.OUTPUT_LIMIT
    if now >= deadline:
        return RunStatus.TIMEOUT
    return None


def _send_quietly(raw: socket.socket, data: bytes) -> None:
    # The bridge may have gone: the read that follows sees the stream end.
    with contextlib.suppress(OSError):
        raw.sendall(data)
