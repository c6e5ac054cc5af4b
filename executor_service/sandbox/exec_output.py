"""Reading an exec's multiplexed stdout/stderr from its socket, with per-stream caps.

The engine frames each chunk as an 8-byte header (stream id, 3 zero bytes, big-endian length) and
the payload. We parse incrementally so chunks can be forwarded while the code runs, and we stop
keeping bytes at the cap (saying so) instead of buffering whatever the code prints.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
from dataclasses import dataclass, field

from executor_service.sandbox.runner import OutputCallback, Stream

HEADER = struct.Struct(">BxxxL")
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


class FrameDecoder:
    """Feed raw socket bytes; complete frames go to the capped streams and the callback."""

    def __init__(self, cap: int, on_output: OutputCallback | None = None) -> None:
        self.stdout = CappedOutput(cap)
        self.stderr = CappedOutput(cap)
        self._on_output = on_output
        self._buffer = bytearray()

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
            target = self.stdout if name == "stdout" else self.stderr
            kept = target.add(payload)
            if kept and self._on_output is not None:
                self._on_output(name, kept)


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


def feed(raw: socket.socket, data: bytes) -> None:
    """Write stdin, then half-close so the program sees end-of-file."""
    with contextlib.suppress(OSError):
        raw.sendall(data)
        raw.shutdown(socket.SHUT_WR)
