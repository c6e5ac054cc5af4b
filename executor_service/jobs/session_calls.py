"""The API's side of a session operation: send a typed command, wait for its reply, or withdraw.

Two bounds: a worker must take the command within session_op_claim_s, or the API withdraws it
(abandon) and answers 503 with Retry-After, and the operation never happens; once taken, the
worker has session_op_run_s to answer.
"""

from __future__ import annotations

import time
import uuid

from executor_service.errors import Overloaded, SandboxError, error_for_code
from executor_service.jobs.session_commands import (
    Refused,
    SessionCommand,
    SessionOperation,
    SessionReply,
)
from executor_service.jobs.store import SessionOpQueue
from executor_service.jobs.store_rules import RETRY_AFTER_S
from executor_service.settings import Settings


class SessionCaller:
    def __init__(self, queue: SessionOpQueue, settings: Settings) -> None:
        self._queue = queue
        self._settings = settings

    def call(
        self, session_id: str, operation: SessionOperation, blob: bytes | None = None
    ) -> tuple[SessionReply, bytes | None]:
        """The worker's reply and its bytes; a refusal is raised as the worker's own error."""
        claim_s = self._settings.session_op_claim_s
        command = SessionCommand(
            id=uuid.uuid4().hex,
            session_id=session_id,
            claim_by=time.time() + claim_s,
            operation=operation,
        )
        self._queue.push(command, blob)
        answer = self._queue.wait_reply(command.id, claim_s)
        if answer is None:
            if self._queue.abandon(command.id):
                raise Overloaded(
                    f"no worker was free for this session operation within {claim_s:g} s; it "
                    "was withdrawn and did not happen",
                    retry_after_s=RETRY_AFTER_S,
                )
            answer = self._queue.wait_reply(command.id, self._settings.session_op_run_s)
            if answer is None:
                raise SandboxError(
                    f"a worker took this session operation but gave no answer within "
                    f"{self._settings.session_op_run_s:g} s"
                )
        reply, data = answer
        if isinstance(reply, Refused):
            raise error_for_code(reply.code, reply.message, field=reply.field)
        return reply, data
