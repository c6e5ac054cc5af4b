"""SessionOpQueue on Redis: a list of commands, bytes beside them, and a claim that decides.

Key layout (prefix `as:`):
    sessionops               list of pending commands (JSON); workers BRPOP it
    sessionop:<id>:blob      the command's file bytes (expire with the claim window)
    sessionop:<id>:fate      "claimed" or "abandoned", set once (NX): who decided first
    sessionop:<id>:reply     list holding the reply (JSON); ...:reply_blob its bytes
"""

from __future__ import annotations

import time
from typing import Any

import redis
from pydantic import TypeAdapter

from executor_service.jobs.redis_base import key
from executor_service.jobs.session_commands import SessionCommand, SessionReply
from executor_service.jobs.store_rules import MAX_BLOCK_S

_QUEUE = key("sessionops")
_REPLY: TypeAdapter[SessionReply] = TypeAdapter(SessionReply)
KEEP_S = 600  # how long fates, blobs and unread replies outlive their command


class RedisSessionOpQueue:
    """`text` decodes replies to str; `raw` moves file bytes untouched."""

    def __init__(self, text: redis.Redis, raw: redis.Redis) -> None:
        self._text = text
        self._raw = raw

    def push(self, command: SessionCommand, blob: bytes | None = None) -> None:
        pipe: Any = self._raw.pipeline()
        if blob is not None:
            pipe.set(_k(command.id, "blob"), blob, ex=KEEP_S)
        pipe.lpush(_QUEUE, command.model_dump_json())
        pipe.execute()

    def take(self, timeout_s: float) -> tuple[SessionCommand, bytes | None] | None:
        popped: Any = self._text.brpop([_QUEUE], timeout=max(0.01, min(timeout_s, MAX_BLOCK_S)))
        if popped is None:
            return None
        command = SessionCommand.model_validate_json(popped[1])
        blob: bytes | None = self._raw.getdel(_k(command.id, "blob"))  # type: ignore[assignment]
        return command, blob

    def claim(self, command_id: str) -> bool:
        return bool(self._text.set(_k(command_id, "fate"), "claimed", nx=True, ex=KEEP_S))

    def abandon(self, command_id: str) -> bool:
        return bool(self._text.set(_k(command_id, "fate"), "abandoned", nx=True, ex=KEEP_S))

    def reply(self, command_id: str, reply: SessionReply, blob: bytes | None = None) -> None:
        pipe: Any = self._raw.pipeline()
        if blob is not None:
            pipe.set(_k(command_id, "reply_blob"), blob, ex=KEEP_S)
        pipe.rpush(_k(command_id, "reply"), _REPLY.dump_json(reply))
        pipe.expire(_k(command_id, "reply"), KEEP_S)
        pipe.execute()

    def wait_reply(
        self, command_id: str, timeout_s: float
    ) -> tuple[SessionReply, bytes | None] | None:
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            popped: Any = self._text.blpop(
                [_k(command_id, "reply")], timeout=max(0.01, min(remaining, MAX_BLOCK_S))
            )
            if popped is not None:
                blob: bytes | None = self._raw.getdel(_k(command_id, "reply_blob"))  # type: ignore[assignment]
                return _REPLY.validate_json(popped[1]), blob
        return None


def _k(command_id: str, what: str) -> str:
    return key("sessionop", command_id, what)
