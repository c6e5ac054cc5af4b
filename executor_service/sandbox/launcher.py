"""The ready interpreter of a pooled sandbox: a launcher that waits for exactly one job.

A pool member whose image has Python starts this launcher (`python3 -c LAUNCHER`) as its main
process, as the code's uid, with stdin open. The worker attaches to the container before starting
it and later writes one job on that stream: a header line, the workspace files, then the program's
own stdin. No `docker exec` round trip and, for Python code, no interpreter start: the launcher
forks, and the child runs the code with `runpy` in the interpreter that was already waiting.

When the program ends, the launcher kills what it left behind (`kill(-1)` spares the caller and
init), writes a trailer on stdout and on stderr saying how it ended (the engine's two pipes are
not ordered between them: only both trailers mean all output has come), and idles so that the
worker can still read
the cgroup's numbers and collect files before it removes the container. The container serves this
one job only. Every limit and the wall-clock kill are enforced from outside, as for any sandbox:
the launcher holds no privilege (same uid as the code, no capabilities), and a program that
forges or suppresses the trailer only garbles its own result (the trailer carries a nonce the
program never sees: it is read from stdin before the program starts).

The job: a line with the header's length in decimal, then the header, whose fields are separated
by NUL bytes (no argument, variable or checked path can hold one): the nonce, "1" if the program is
Python to run in process, the length of its stdin, the number of files, each file's path and
length, the number of arguments, the arguments, then the environment as NAME=value. The files'
contents follow in order, then the program's stdin, which the launcher feeds it through a pipe it
then closes (end of file). No JSON and no tar: the launcher imports nothing beyond os, signal and
sys, so a member costs the engine's CPU little more than a bare interpreter does.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

TRAILER_PREFIX = b"\x00agent-sandbox-exit "
LAUNCHER_COMMAND = "python3"

# Kept small and dependency-free: it runs in the sandbox image's own Python, before any user code.
LAUNCHER = r"""
import os, signal, sys
def read_exactly(n):
    data = bytearray()
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            raise SystemExit(125)
        data += chunk
    return bytes(data)
line = bytearray()
while not line.endswith(b"\n"):
    byte = os.read(0, 1)
    if not byte:
        raise SystemExit(0)
    line += byte
fields = [field.decode() for field in read_exactly(int(line)).split(b"\0")]
nonce, python, stdin_size, count = fields[0], fields[1] == "1", int(fields[2]), int(fields[3])
at = 4 + 2 * count
files = [(fields[4 + 2 * i], int(fields[5 + 2 * i])) for i in range(count)]
argv = fields[at + 1 : at + 1 + int(fields[at])]
env = dict(item.split("=", 1) for item in fields[at + 1 + int(fields[at]) :])
for path, size in files:  # the worker's checked relative paths, in a workspace nobody touched yet
    full = os.path.join("/workspace", path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    view = memoryview(read_exactly(size))
    while view:
        view = view[os.write(fd, view):]
    os.close(fd)
stdin = read_exactly(stdin_size)
reader, writer = os.pipe()
child = os.fork()
if child == 0:
    os.close(writer)
    os.dup2(reader, 0)
    os.close(reader)
    os.environ.update(env)
    if not python:
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            os.write(2, f"{argv[0]}: {exc.strerror}\n".encode())
            os._exit(127)
    import runpy, traceback
    script = os.path.join("/workspace", argv[1])
    sys.argv = argv[1:]
    sys.path[0] = "/workspace"
    del read_exactly, line, fields, files, argv, env, child, stdin, nonce, view
    try:
        runpy.run_path(script, run_name="__main__")
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        # As `python main.py` shows it: from the script's own frames, not the launcher's.
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != script:
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)  # None for a SyntaxError: no frames
        raise SystemExit(1)
    raise SystemExit(0)
os.close(reader)
try:
    view = memoryview(stdin)
    while view:
        view = view[os.write(writer, view):]
except BrokenPipeError:
    pass  # the program stopped reading: the rest of its stdin is not wanted
os.close(writer)
_, status = os.waitpid(child, 0)
code = os.waitstatus_to_exitcode(status)
code = 128 - code if code < 0 else code
for _ in range(3):
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        break
trailer = b"\x00agent-sandbox-exit " + nonce.encode() + b" " + str(code).encode() + b"\n"
os.write(1, trailer)
os.write(2, trailer)
os.close(1)
os.close(2)
while True:
    signal.pause()
"""


@dataclass(frozen=True)
class Job:
    """What the worker sends the launcher; `nonce` authenticates the trailer that answers it."""

    argv: tuple[str, ...]
    env: dict[str, str]
    files: dict[str, bytes]  # checked relative paths (workspace.safe_relative_path)
    python: bool
    nonce: str

    @classmethod
    def create(
        cls, argv: tuple[str, ...], env: dict[str, str], files: dict[str, bytes], *, python: bool
    ) -> Job:
        return cls(argv, env, files, python, secrets.token_hex(16))

    def encode(self, stdin: bytes) -> bytes:
        """The job's bytes; ValueError if an argument or variable holds a NUL (no exec could
        pass it either)."""
        fields = [self.nonce, "1" if self.python else "0", str(len(stdin)), str(len(self.files))]
        for path, content in self.files.items():
            fields += [path, str(len(content))]
        fields += [str(len(self.argv)), *self.argv]
        fields += [f"{name}={value}" for name, value in self.env.items()]
        if any("\x00" in field for field in fields):
            raise ValueError("an argument or environment variable holds a NUL byte")
        header = "\x00".join(fields).encode()
        return b"%d\n" % len(header) + header + b"".join(self.files.values()) + stdin

    def exit_code(self, frame: bytes) -> int | None:
        """The program's exit code if `frame` (a stderr frame) is this job's trailer."""
        expected = TRAILER_PREFIX + self.nonce.encode() + b" "
        if not frame.startswith(expected) or not frame.endswith(b"\n"):
            return None
        digits = frame[len(expected) : -1]
        return int(digits) if digits.isdigit() else None


def runs_in_process(argv: tuple[str, ...]) -> bool:
    """Python code the launcher can run with runpy: `python main.py [args...]`, nothing more."""
    return len(argv) >= 2 and argv[0] in {"python", "python3"} and not argv[1].startswith("-")
