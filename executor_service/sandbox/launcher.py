"""The ready interpreter: a launcher that waits in a sandbox for its job (or, in a session, jobs).

A pool member whose image has Python starts this launcher (`python3 -c LAUNCHER`) as its main
process, as the code's uid, with stdin open. The worker attaches to the container before starting
it and later writes one job on that stream: a header line, the workspace files, then the program's
own stdin. No `docker exec` round trip and, for Python code, no interpreter start: the launcher
forks, and the child runs the code in the interpreter that was already waiting, in its own
`__main__` module emptied of the launcher's names, as `python main.py` would.

When the program ends, the launcher kills what it left behind (`kill(-1)` spares the caller and
init), writes a trailer on stdout and on stderr saying how it ended (the engine's two pipes are
not ordered between them: only both trailers mean all output has come), and waits for the end of
its stdin, so that the worker can still read the cgroup's numbers and collect files. The worker
then closes its side of the stream (the container is made with StdinOnce, so that closes the
launcher's stdin) and the launcher exits: the container stops by itself, as a plain `docker run`
does, and its removal costs the engine no kill (a `runc kill` process, and the engine's wait on
it). The container serves this one job only. Every limit and the wall-clock kill are enforced
from outside, as for any sandbox: the launcher holds no privilege (same uid as the code, no
capabilities), and a program that forges or suppresses the trailer only garbles its own result
(the trailer carries a nonce the program never sees: it is read from stdin before the program
starts).

In a session (`python3 -c LAUNCHER session`, started by one `docker exec` as the code's uid), the
launcher serves job after job on that exec's stream: after each trailer it waits for the next
instead of closing its output. Files are placed component by component without following a
symlink (a session's earlier code may have left one); a refused file fails the job with 125 and
the reason, as the exec path's placement does.

The job: a line with the header's length in decimal, then the header, whose fields are separated
by NUL bytes (no argument, variable or checked path can hold one): the nonce, "1" if the program is
Python to run in process, the length of its stdin, the number of files, each file's path and
length, the number of arguments, the arguments, then the environment as NAME=value. The files'
contents follow in order, then the program's stdin, which the launcher feeds it through a pipe it
then closes (end of file). No JSON and no tar, and no module a bare interpreter has not already
loaded: not runpy (with pkgutil, importlib.util and typing behind it) nor signal (with enum),
which cost a member 8-10 ms of CPU more than `python main.py` (cgroup cpuacct, print(1), runc).
traceback is imported only when the code raised. Before it waits, the launcher freezes what it
allocated out of the garbage collector's reach (gc.freeze), so a child does not copy those pages
when a collection or its exit walks them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

TRAILER_PREFIX = b"\x00agent-sandbox-exit "
LAUNCHER_COMMAND = "python3"

# Reading a job's bytes and placing its files, shared with the kernel bridge (kernel_bridge.py).
# Kept small and dependency-free: it runs in the sandbox image's own Python, before any user code.
PLACEMENT = r"""
import errno, os, stat, sys
REASONS = {errno.ELOOP: "it passes through a symlink", errno.ENOTDIR: "a parent is not a directory",
           errno.EISDIR: "it is a directory", errno.EACCES: "permission denied",
           errno.EPERM: "permission denied", errno.EROFS: "permission denied",
           errno.ENOENT: "permission denied"}
def read_exactly(n):
    data = bytearray()
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            raise SystemExit(125)
        data += chunk
    return bytes(data)
def enter(fd, name, kind):
    # What is there must be a real `kind`, seen the same before and after opening it: no symlink
    # anywhere (some kernels, gVisor's among them, follow one despite O_NOFOLLOW).
    try:
        seen = os.lstat(name, dir_fd=fd)
    except FileNotFoundError:
        seen = None
    if seen is not None and stat.S_ISLNK(seen.st_mode):
        raise OSError(errno.ELOOP, name)
    if kind == "dir":
        if seen is None or not stat.S_ISDIR(seen.st_mode):
            raise OSError(errno.ENOTDIR, name)
        opened = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
    else:
        if seen is not None and stat.S_ISDIR(seen.st_mode):
            raise OSError(errno.EISDIR, name)
        opened = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644,
                         dir_fd=fd)
    now = os.fstat(opened)
    expected = stat.S_ISDIR if kind == "dir" else stat.S_ISREG
    same = seen is None or (now.st_dev, now.st_ino) == (seen.st_dev, seen.st_ino)
    if not expected(now.st_mode) or not same:
        os.close(opened)
        raise OSError(errno.ELOOP, name)
    return opened
def place(path, data):
    # Component by component: a session's earlier code may have left symlinks or swapped parts.
    parts = path.split("/")
    fd = os.open("/workspace", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            inner = enter(fd, part, "dir")
            os.close(fd)
            fd = inner
        out = enter(fd, parts[-1], "file")
    finally:
        os.close(fd)
    view = memoryview(data)
    while view:
        view = view[os.write(out, view):]
    os.close(out)
"""
LAUNCHER = (
    PLACEMENT
    + r"""
SESSION = sys.argv[1:] == ["session"]
import gc
gc.freeze()
def end(nonce, code):
    for _ in range(3):  # what the program left behind; kill(-1) spares this process
        try:
            os.kill(-1, 9)  # SIGKILL, without importing signal (and with it enum)
        except OSError:
            break
    trailer = b"\x00agent-sandbox-exit " + nonce.encode() + b" " + str(code).encode() + b"\n"
    os.write(1, trailer)
    os.write(2, trailer)
def run_main(script, args):
    # As `python main.py` runs it: the code in the interpreter's own __main__ module (emptied of
    # the launcher's names), __file__ absolute, argv and path[0] as python sets them.
    g, system, builtins = globals(), sys, __builtins__
    g.clear()  # the names below are this function's own, or builtins
    g.update(__name__="__main__", __doc__=None, __package__=None, __loader__=None,
             __spec__=None, __file__=script, __cached__=None, __builtins__=builtins)
    system.argv = args
    system.path[0] = script.rpartition("/")[0]
    try:
        with open(script, "rb") as source:
            code = compile(source.read(), script, "exec", dont_inherit=True)
        exec(code, g)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        import traceback
        # As `python main.py` shows it: from the script's own frames, not the launcher's.
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != script:
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)  # None for a SyntaxError: no frames
        raise SystemExit(1)
    raise SystemExit(0)
while True:
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
    refused = None
    for path, size in files:  # the worker's checked relative paths
        data = read_exactly(size)
        if refused is None:
            try:
                place(path, data)
            except OSError as exc:
                reason = REASONS.get(exc.errno, "it could not be written")
                refused = f"sandbox: could not place {path} in the workspace: {reason}\n"
    stdin = read_exactly(stdin_size)
    if refused is not None:
        os.write(2, refused.encode())
        end(nonce, 125)
        continue
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
        run_main(os.path.join("/workspace", argv[1]), argv[1:])
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
    end(nonce, 128 - code if code < 0 else code)
    if not SESSION:
        break
os.close(1)
os.close(2)
while os.read(0, 4096):  # until the worker lets go of the stream (it has read the cgroup's
    pass                 # numbers and the files); then the sandbox ends by itself
os._exit(0)  # nothing left to flush: no interpreter teardown
"""
)


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
    """Python code the launcher can run in process: `python main.py [args...]`, nothing more."""
    return len(argv) >= 2 and argv[0] in {"python", "python3"} and not argv[1].startswith("-")
