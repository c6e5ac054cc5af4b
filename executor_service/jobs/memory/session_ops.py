"""SessionOpQueue in memory: commands first in, first out, a fate set once, replies by command.

Unlike Redis, nothing here expires (fates, unread replies and blobs live as long as the process):
a unit test never runs for the ten minutes Redis keeps them.
"""

from __future__ import annotations

from collections import deque

from pydantic import TypeAdapter

from executor_service.jobs.memory.base import Shared
from executor_service.jobs.session_commands import SessionCommand, SessionReply
from executor_service.jobs.store_rules import MAX_BLOCK_S

_REPLY: TypeAdapter[SessionReply] = TypeAdapter(SessionReply)


class MemorySessionOpQueue:
    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._pending: deque[tuple[str, bytes | None]] = deque()  # command JSON, its bytes
        self._fates: dict[str, str] = {}  # "claimed" or "abandoned", whichever came first
        self._replies: dict[str, deque[bytes]] = {}
        self._reply_blobs: dict[str, bytes] = {}

    def push(self, command: SessionCommand, blob: bytes | None = None) -> None:
        with self._shared.cond:
            self._pending.append((command.model_dump_json(), blob))
            self._shared.wake()

    def take(self, timeout_s: float) -> tuple[SessionCommand, bytes | None] | None:
        # Like BRPOP in the Redis queue: one wait of at most MAX_BLOCK_S; callers loop.
        taken = self._shared.wait_for(
            lambda: self._pending.popleft() if self._pending else None,
            max(0.01, min(timeout_s, MAX_BLOCK_S)),
        )
        if taken is None:
            return None
        raw, blob = taken
        return SessionCommand.model_validate_json(raw), blob

    def claim(self, command_id: str) -> bool:
        return self._decide(command_id, "claimed")

    def abandon(self, command_id: str) -> bool:
        return self._decide(command_id, "abandoned")

    def reply(self, command_id: str, reply: SessionReply, blob: bytes | None = None) -> None:
        with self._shared.cond:
            if blob is not None:
                self._reply_blobs[command_id] = blob
            self._replies.setdefault(command_id, deque()).append(_REPLY.dump_json(reply))
            self._shared.wake()

    def wait_reply(
        self, command_id: str, timeout_s: float
    ) -> tuple[SessionReply, bytes | None] | None:
        if timeout_s <= 0:
            return None

        def pop() -> tuple[bytes, bytes | None] | None:
            waiting = self._replies.get(command_id)
            if not waiting:
                return None
            raw = waiting.popleft()
            if not waiting:
                del self._replies[command_id]
            return raw, self._reply_blobs.pop(command_id, None)

        answer = self._shared.wait_for(pop, timeout_s)
        if answer is None:
            return None
        raw, blob = answer
        return _REPLY.validate_json(raw), blob

    def _decide(self, command_id: str, fate: str) -> bool:
        with self._shared.cond:
            if command_id in self._fates:
                return False
            self._fates[command_id] = fate
            return True
