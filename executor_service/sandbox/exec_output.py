"""Reading a run's multiplexed stdout/stderr from its socket, with per-stream caps, until it ends.

The engine frames each chunk as an 8-byte header (stream id, 3 zero bytes, big-endian length) and
the payload. We parse incrementally so chunks can be forwarded while the code runs, and we stop
keeping bytes at the cap (saying so) instead of buffering whatever the code prints.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from executor_service.sandbox.runner import OutputCallback, Stream
from executor_service.sandbox.spec import RunStatus

HEADER = struct.Struct(">BxxxL")
POLL_S = 0.25
EXEC_INSPECT_EVERY_S = 1.0
DRAIN_S = 0.5
STREAMS: dict[int, Stream] = {1: "stdout", 2: "stderr"}


@dataclass
class CappedOutput:
    """Bytes kept for one stream, up to a cap."""

    cap: int
    data: bytearray = field(default_factory=bytearray)
    truncated: bool = False

    def add(self, chunk: bytes) -> bytes:
        """Keep what fits; return the part kept (what a live listener should see)."""
        room = self.cap - len(self.data)
        kept = chunk[: max(room, 0)]
        self.data += kept
        if len(chunk) > len(kept):
            self.truncated = True
        return kept

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


# A launcher's trailer (launcher.py) starts with NUL and ends at a newline within this many bytes.
TRAILER_START = b"\x00"
TRAILER_MAX_BYTES = 128
TrailerCheck = Callable[[bytes], bool]


class FrameDecoder:
    """Feed raw socket bytes; complete frames go to the capped streams and the callback.

    With `is_trailer`, a line that starts with NUL and that the check accepts is taken out of
    the output and kept in `trailers` by stream (a pooled sandbox's launcher ends its job with
    one on each: the two pipes are not ordered between them, so only both trailers say that all
    the output has come). Only bytes from a NUL on are held back until they can be told apart,
    so ordinary output streams as it comes.
    """

    def __init__(
        self,
        cap: int,
        on_output: OutputCallback | None = None,
        is_trailer: TrailerCheck | None = None,
    ) -> None:
        self.stdout = CappedOutput(cap)
        self.stderr = CappedOutput(cap)
        self.trailers: dict[Stream, bytes] = {}
        self._on_output = on_output
        self._is_trailer = is_trailer
        self._held: dict[Stream, bytes] = {"stdout": b"", "stderr": b""}
        self._buffer = bytearray()

    @property
    def trailer(self) -> bytes | None:
        """The trailer, once it has come on both streams (then all the output has too)."""
        if len(self.trailers) < len(STREAMS):
            return None
        return self.trailers["stderr"]

    @property
    def over_cap(self) -> bool:
        return self.stdout.truncated or self.stderr.truncated

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= HEADER.size:
            stream_id, length = HEADER.unpack_from(self._buffer)
            end = HEADER.size + length
            if len(self._buffer) < end:
                return
            payload = bytes(self._buffer[HEADER.size : end])
            del self._buffer[:end]
            name = STREAMS.get(stream_id)
            if name is None:
                continue
            if self._is_trailer is not None:
                payload = self._without_trailer(name, payload)
            self._emit(name, payload)

    def finish(self) -> None:
        """Release bytes held back as a possible trailer that never completed."""
        for name in ("stdout", "stderr"):
            held, self._held[name] = self._held[name], b""
            self._emit(name, held)

    def _emit(self, name: Stream, payload: bytes) -> None:
        if not payload:
            return
        target = self.stdout if name == "stdout" else self.stderr
        kept = target.add(payload)
        if kept and self._on_output is not None:
            self._on_output(name, kept)

    def _without_trailer(self, name: Stream, payload: bytes) -> bytes:
        """The bytes to pass on now; a (possible) trailer is held back or taken out."""
        assert self._is_trailer is not None
        data, self._held[name] = self._held[name] + payload, b""
        start = data.find(TRAILER_START)
        while start != -1 and name not in self.trailers:
            end = data.find(b"\n", start)
            if end == -1 and len(data) - start <= TRAILER_MAX_BYTES:
                self._held[name] = data[start:]  # may become a trailer: decide when more comes
                return data[:start]
            if end != -1 and self._is_trailer(data[start : end + 1]):
                self.trailers[name] = data[start : end + 1]
                return data[:start] + data[end + 1 :]
            start = data.find(TRAILER_START, start + 1)
        return data


def drain(raw: socket.socket, decoder: FrameDecoder, grace_s: float) -> None:
    """Read what is left until end-of-stream, a quiet spell of grace_s, or the cap."""
    while not decoder.over_cap:
        readable, _, _ = select.select([raw], [], [], grace_s)
        if not readable:
            return
        data = raw.recv(65536)
        if not data:
            return
        decoder.feed(data)


def feed(raw: socket.socket, data: bytes, *, half_close: bool = True) -> None:
    """Write stdin, then half-close so the program sees end-of-file.

    A launcher's job says its own length: there the stream stays open both ways, as the engine
    ends an attach stream (output too) once its stdin is closed.
    """
    with contextlib.suppress(OSError):
        raw.sendall(data)
        if half_close:
            raw.shutdown(socket.SHUT_WR)


def read_run(
    raw: socket.socket,
    decoder: FrameDecoder,
    wall_time_s: float,
    cancel: threading.Event | None,
    ended: Callable[[], bool] | None,
    *,
    until: Callable[[], bool] | None = None,
    keep_open: bool = False,
) -> tuple[RunStatus | None, float]:
    """Read a run's output until it ends, and say whether (and why) we cut it short.

    It ends at end of stream, when `until` holds after a read, or, when the stream is quiet, once
    `ended` says so (a background child may hold an exec's output open after the program has
    ended: then what the engine still has in flight is taken, and that is all). The stream is
    closed after, unless `keep_open` and the run ended by `until` (a session's launcher waits on
    it for the next job).
    """
    started = time.monotonic()
    deadline = started + wall_time_s
    stopped: RunStatus | None = None
    next_inspect = started + EXEC_INSPECT_EVERY_S
    kept = False
    try:
        while True:
            now = time.monotonic()
            if cancel is not None and cancel.is_set():
                stopped = RunStatus.CANCELLED
                break
            if now >= deadline:
                stopped = RunStatus.TIMEOUT
                break
            readable, _, _ = select.select([raw], [], [], min(POLL_S, deadline - now))
            if not readable:
                if ended is not None and now >= next_inspect:
                    next_inspect = now + EXEC_INSPECT_EVERY_S
                    if ended():
                        drain(raw, decoder, min(DRAIN_S, max(deadline - now, 0.0)))
                        break
                continue
            data = raw.recv(65536)
            if not data:
                break
            decoder.feed(data)
            if decoder.over_cap:
                stopped = RunStatus.OUTPUT_LIMIT
                break
            if until is not None and until():
                kept = keep_open
                break
    except BaseException:
        close_stream(raw)
        raise
    if not kept:
        close_stream(raw)
    return stopped, time.monotonic() - started


def close_stream(raw: socket.socket) -> None:
    """Shut the connection itself down, not only this handle of it: another reference may hold
    it open, and an engine still copying output into an open connection nobody reads waits on
    it when the container is killed."""
    with contextlib.suppress(OSError):
        raw.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        raw.close()
