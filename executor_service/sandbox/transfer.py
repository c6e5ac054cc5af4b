"""The shell programs that move files in and out of a workspace, and the reading of what they print.

Each transfer is one `exec` of POSIX sh as the code's user, so the checks and the transfer happen
in the same process. A path is walked one component at a time from /workspace: a symlink anywhere
(the last component too) is refused, each directory is entered with `cd -P` and the physical
working directory compared with the expected path after every step, so a directory the code swaps
for a link meanwhile is caught before anything is made or read there; the file itself is opened
by `dd` with `nofollow` from that directory. Sizes are read before content is sent, so a file over
a limit is a refusal, never a stream cut at an output cap.

Everything here is pure: argv and stdin out, bytes of output in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from executor_service.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    SandboxError,
    ServiceError,
    UnsafePath,
)
from executor_service.sandbox.hardening import WORKSPACE
from executor_service.sandbox.runner import FileListing, WorkspaceFile
from executor_service.sandbox.workspace import safe_relative_path

# A listing stops at this many bytes of names even below its count (paths may be 4 KiB each).
LIST_MAX_BYTES = 4 << 20
HEADER_BYTES = 64  # room for one "index status size" line of the fetch stream

# enter DIR: make DIR (relative, normalised, maybe empty) the working directory without following
# a symlink, creating missing directories when $creating is yes. On failure $why names the problem
# and $n counts the components entered before it.
_ENTER = r"""
enter() {
    want=$1
    n=0
    cd -P WORKSPACE || { why=gone; return 1; }
    [ -n "$want" ] || return 0
    saved_ifs=$IFS
    IFS=/
    set -f
    set -- $want
    set +f
    IFS=$saved_ifs
    here=WORKSPACE
    for part do
        if [ -L "./$part" ]; then why=link; return 1; fi
        if [ ! -e "./$part" ]; then
            if [ "$creating" != yes ]; then why=missing; return 1; fi
            if [ ! -w . ]; then why=readonly; return 1; fi
            mkdir -- "./$part" || { why=write; return 1; }
        elif [ ! -d "./$part" ]; then
            why=notdir; return 1
        fi
        if ! cd -P -- "./$part" 2>/dev/null; then
            if [ -d "./$part" ]; then why=noentry; else why=changed; fi
            return 1
        fi
        here=$here/$part
        # Catches a directory the code swapped for a link since the test above, before anything
        # is made or read there.
        [ "$PWD" = "$here" ] || { why=link; return 1; }
        n=$((n + 1))
    done
}
split() {
    case $1 in
        */*) dir=${1%/*} name=${1##*/} ;;
        *) dir= name=$1 ;;
    esac
}
""".replace("WORKSPACE", WORKSPACE)

# A size comes from find, not stat: coreutils' stat calls statx, which gVisor (Debian's runsc of
# 2022-12) refuses with EINVAL.
# fetch MAX PATH...: for each path a line "index status detail"; status ok is followed by exactly
# `detail` bytes (zero-padded should the file shrink meanwhile), so the stream stays framed.
FETCH_SCRIPT = (
    _ENTER
    + r"""
max=$1
shift
i=0
for path do
    split "$path"
    if ! enter "$dir"; then
        echo "$i $why $n"
    elif [ -L "./$name" ]; then
        echo "$i link $n"
    elif [ -d "./$name" ]; then
        echo "$i isdir $n"
    elif [ ! -e "./$name" ]; then
        echo "$i missing $n"
    elif [ ! -f "./$name" ]; then
        echo "$i special $n"
    elif [ ! -r "./$name" ]; then
        echo "$i unreadable $n"
    elif ! size=$(find "./$name" -maxdepth 0 -printf %s 2>/dev/null) || [ -z "$size" ]; then
        echo "$i missing $n"
    elif [ "$size" -gt "$max" ]; then
        echo "$i big $size"
    else
        echo "$i ok $size"
        {
            dd if="./$name" iflag=nofollow,nonblock,count_bytes count="$size" bs=65536 \
                status=none 2>/dev/null
            head -c "$size" /dev/zero 2>/dev/null
        } | head -c "$size"
    fi
    i=$((i + 1))
done
"""
)

# put MODE COUNT (PATH SIZE)... [ARGV...]: the contents arrive one after the other on stdin. A new
# file is created exclusively; one that replaces a file is written beside it and renamed over it,
# so a write that fails (no space) leaves the earlier file whole. MODE report prints "index status
# detail" per file and stops at the first refusal; MODE run is silent and then becomes ARGV with
# what is left of stdin, or exits 125 with the reason on stderr.
PUT_SCRIPT = (
    _ENTER
    + r"""
mode=$1
count=$2
shift 2
creating=yes
i=0
trap '' XFSZ
fail() {
    if [ "$mode" = report ]; then
        echo "$i $1 $2"
        exit 0
    fi
    case $1 in
        link) reason="it passes through a symlink" ;;
        notdir) reason="a parent is not a directory" ;;
        isdir) reason="it is a directory" ;;
        readonly | noentry) reason="permission denied" ;;
        *) reason="it could not be written" ;;
    esac
    echo "sandbox: could not place $path in the workspace: $reason" >&2
    exit 125
}
while [ "$i" -lt "$count" ]; do
    path=$1 size=$2
    shift 2
    split "$path"
    enter "$dir" || fail "$why" "$n"
    [ ! -L "./$name" ] || fail link "$n"
    [ ! -d "./$name" ] || fail isdir "$n"
    [ -w . ] || fail readonly "$n"
    part="./$name"
    [ ! -e "$part" ] || part="./.sandbox-put-$$-$i"
    if ! dd of="$part" oflag=nofollow conv=excl iflag=fullblock,count_bytes count="$size" \
        bs=65536 status=none; then
        rm -f -- "$part"
        fail write "$n"
    fi
    if [ "$part" != "./$name" ] && ! mv -f -T -- "$part" "./$name"; then
        rm -f -- "$part"
        fail write "$n"
    fi
    [ "$mode" != report ] || echo "$i ok"
    i=$((i + 1))
done
trap - XFSZ
[ "$mode" = report ] || exec "$@"
"""
)

# list COUNT BYTES: "size path\0" per regular file, at most COUNT of them and BYTES in all.
LIST_SCRIPT = (
    f"find {WORKSPACE} -xdev -type f -printf '%s %P\\0' 2>/dev/null"
    ' | head -z -n "$1" | head -c "$2"'
)


class Problem(enum.StrEnum):
    """Why one path could not be transferred, as the scripts print it."""

    LINK = "link"
    NOT_DIR = "notdir"
    MISSING = "missing"
    IS_DIR = "isdir"
    SPECIAL = "special"
    UNREADABLE = "unreadable"
    NO_ENTRY = "noentry"
    READ_ONLY = "readonly"
    TOO_LARGE = "big"
    WRITE = "write"
    CHANGED = "changed"  # the code changed the path while it was walked
    GONE = "gone"


@dataclass(frozen=True)
class Refusal:
    """One path a script refused, where along the path it went wrong, and why."""

    path: str
    problem: Problem
    at: str  # the part of `path` the problem is at ("" for the workspace itself)
    size_bytes: int = 0
    limit_bytes: int = 0

    @property
    def reason(self) -> str:
        """A short reason without the path, e.g. for OutputFile.error."""
        where = self.at or "the workspace"
        reasons = {
            Problem.LINK: f"passes through a symlink ({where})",
            Problem.NOT_DIR: f"{where} is not a directory",
            Problem.MISSING: "no such file",
            Problem.IS_DIR: "is a directory",
            Problem.SPECIAL: "is not a regular file",
            Problem.UNREADABLE: "is not readable",
            Problem.NO_ENTRY: f"{where} cannot be entered (permission denied)",
            Problem.READ_ONLY: f"{where} is not writable",
            Problem.TOO_LARGE: f"over the {self.limit_bytes}-byte limit",
            Problem.WRITE: "could not be written",
            Problem.CHANGED: "the workspace changed meanwhile; try again",
            Problem.GONE: "the workspace is gone",
        }
        return reasons[self.problem]

    def read_error(self) -> ServiceError:
        """The error a caller reading this path gets."""
        message = f"cannot read {self.path}: {self.reason}"
        if self.problem is Problem.LINK:
            return UnsafePath(message, field="path")
        if self.problem is Problem.TOO_LARGE:
            return PayloadTooLarge(
                f"{self.path} is {self.size_bytes} bytes, over the {self.limit_bytes}-byte limit",
                field="path",
            )
        if self.problem in {Problem.MISSING, Problem.NOT_DIR, Problem.IS_DIR, Problem.SPECIAL}:
            return NotFound(message, field="path")
        if self.problem is Problem.GONE:
            return SandboxError(message)
        if self.problem is Problem.CHANGED:
            return Conflict(message, field="path")
        return InvalidRequest(message, field="path")

    def write_error(self, stderr: str) -> ServiceError:
        """The error a caller writing this path gets; stderr tells a full workspace apart."""
        message = f"cannot write {self.path}: {self.reason}"
        if self.problem is Problem.LINK:
            return UnsafePath(message, field="path")
        if self.problem is Problem.GONE:
            return SandboxError(message)
        if self.problem is Problem.CHANGED:
            return Conflict(message, field="path")
        if self.problem is not Problem.WRITE:
            return InvalidRequest(message, field="path")
        if "No space left" in stderr or "File too large" in stderr:
            return PayloadTooLarge(
                f"cannot write {self.path}: it does not fit in the workspace", field="path"
            )
        if "Permission denied" in stderr or "Read-only file system" in stderr:
            return InvalidRequest(f"{message}: permission denied", field="path")
        if "File exists" in stderr or "No such file or directory" in stderr:
            # Only the code's own processes, running during the transfer, make these.
            return Conflict(f"{message}: the workspace changed meanwhile; try again", field="path")
        return SandboxError(f"{message}: {stderr.strip()[:200]}")


@dataclass(frozen=True)
class Fetched:
    """One path of a fetch: its content, or why it was refused."""

    path: str
    size_bytes: int
    content: bytes
    refusal: Refusal | None = None


def _at(path: str, count: int) -> str:
    return "/".join(path.split("/")[: max(count, 0)])


def _refusal(path: str, status: str, detail: int, *, limit_bytes: int = 0) -> Refusal:
    try:
        problem = Problem(status)
    except ValueError as exc:
        raise SandboxError(f"workspace transfer printed an unknown status {status!r}") from exc
    if problem is Problem.TOO_LARGE:
        return Refusal(path, problem, path, size_bytes=detail, limit_bytes=limit_bytes)
    # The script counts the components it entered: the problem is at the next one, except
    # that a directory which is not writable is the one it stands in.
    entered = detail if problem is Problem.READ_ONLY else detail + 1
    return Refusal(path, problem, _at(path, entered))


def fetch_argv(paths: Sequence[str], *, max_bytes: int) -> list[str]:
    """Argv that prints each (checked, normalised) path's content or refusal."""
    return ["/bin/sh", "-c", FETCH_SCRIPT, "sandbox", str(max_bytes), *paths]


def fetch_cap(count: int, max_bytes: int) -> int:
    """An output cap the fetch can never reach: every file at the limit, plus its header."""
    return count * (max_bytes + HEADER_BYTES) + 4096


def parse_fetch(data: bytes, paths: Sequence[str], *, max_bytes: int) -> list[Fetched]:
    """Read the fetch stream back into one Fetched per path, in order."""
    fetched: list[Fetched] = []
    position = 0
    for index, path in enumerate(paths):
        end = data.find(b"\n", position)
        if end < 0:
            raise SandboxError(f"workspace transfer ended early, before {path}")
        fields = data[position:end].decode("ascii", errors="replace").split(" ")
        position = end + 1
        if len(fields) != 3 or fields[0] != str(index) or not fields[2].isdigit():
            raise SandboxError(f"workspace transfer printed a bad header for {path}")
        status, detail = fields[1], int(fields[2])
        if status != "ok":
            refusal = _refusal(path, status, detail, limit_bytes=max_bytes)
            fetched.append(Fetched(path, refusal.size_bytes, b"", refusal))
            continue
        content = data[position : position + detail]
        if len(content) != detail:
            raise SandboxError(f"workspace transfer of {path} ended early")
        position += detail
        fetched.append(Fetched(path, detail, content))
    return fetched


@dataclass(frozen=True)
class PutRequest:
    """What one put exec needs: its argv (ending with `argv` in run mode) and its stdin."""

    argv: list[str]
    stdin: bytes
    paths: list[str]


def put_request(files: Mapping[str, bytes], *, then_run: Sequence[str] | None = None) -> PutRequest:
    """A put of `files`; with `then_run`, the script becomes that program once they are placed.

    Raises UnsafePath for a name that could escape the workspace, before anything runs.
    """
    paths = [safe_relative_path(path) for path in files]
    mode = "report" if then_run is None else "run"
    argv = ["/bin/sh", "-c", PUT_SCRIPT, "sandbox", mode, str(len(paths))]
    for path, content in zip(paths, files.values(), strict=True):
        argv += [path, str(len(content))]
    if then_run is not None:
        argv += then_run
    return PutRequest(argv=argv, stdin=b"".join(files.values()), paths=paths)


def parse_put(data: bytes, paths: Sequence[str]) -> Refusal | None:
    """The first refused file of a report-mode put, or None when every file was written."""
    lines = data.decode("utf-8", errors="replace").splitlines()
    for index, path in enumerate(paths):
        if index >= len(lines):
            raise SandboxError(f"workspace transfer ended early, before {path}")
        fields = lines[index].split(" ")
        if fields[0] != str(index) or len(fields) not in {2, 3}:
            raise SandboxError(f"workspace transfer printed a bad status for {path}")
        if fields[1] == "ok":
            continue
        if len(fields) != 3 or not fields[2].isdigit():
            raise SandboxError(f"workspace transfer printed a bad status for {path}")
        return _refusal(path, fields[1], int(fields[2]))
    return None


def list_argv(max_entries: int) -> list[str]:
    """Argv that prints one more entry than `max_entries`, so a cut listing can be told apart."""
    return [
        "/bin/sh",
        "-c",
        LIST_SCRIPT,
        "sandbox",
        str(max(max_entries, 0) + 1),
        str(LIST_MAX_BYTES),
    ]


def parse_listing(data: bytes, *, max_entries: int) -> FileListing:
    """The listed files, sorted, and whether the workspace held more than fit."""
    entries = data.split(b"\0")
    # The last piece is empty after a final NUL; anything else there is an entry cut short.
    truncated = entries.pop() != b"" or len(data) >= LIST_MAX_BYTES
    if len(entries) > max_entries:
        truncated = True
        entries = entries[: max(max_entries, 0)]
    files = []
    for entry in entries:
        size, _, path = entry.decode("utf-8", errors="replace").partition(" ")
        if size.isdigit() and path:
            files.append(WorkspaceFile(path=path, size_bytes=int(size)))
    return FileListing(files=sorted(files, key=lambda item: item.path), truncated=truncated)
