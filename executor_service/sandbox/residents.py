"""Processes that wait in a sandbox for their next job, on an exec stream this process holds.

A session's launcher and an interpreter session's kernel bridge are each started once (one
`docker exec` as the code's uid) and kept attached between runs. This module only keeps their
streams, per sandbox and per kind, and says which are still worth using: a resident that wrote
anything while idle has ended (end of stream, most likely), so its stream is closed and dropped.
"""

from __future__ import annotations

import select
import socket
import threading
from dataclasses import dataclass

from executor_service.sandbox.exec_output import close_stream


@dataclass(frozen=True)
class Resident:
    stream: socket.socket
    exec_id: str


class Residents:
    """The residents of one kind (launchers, or kernel bridges), by sandbox id; thread-safe."""

    def __init__(self) -> None:
        self._held: dict[str, Resident] = {}
        self._lock = threading.Lock()

    def take(self, sandbox_id: str) -> Resident | None:
        """The sandbox's resident, now the caller's, if it is still waiting; else None."""
        with self._lock:
            held = self._held.pop(sandbox_id, None)
        if held is not None and select.select([held.stream], [], [], 0)[0]:
            close_stream(held.stream)
            return None
        return held

    def keep(self, sandbox_id: str, resident: Resident) -> None:
        """Give a resident back once its job has been answered: it waits for the next one."""
        with self._lock:
            self._held[sandbox_id] = resident

    def drop(self, sandbox_id: str) -> None:
        with self._lock:
            held = self._held.pop(sandbox_id, None)
        if held is not None:
            close_stream(held.stream)
