"""Threads of their own that serve session operations, so busy execution slots never starve them.

Each takes a command, leaves it if its claim window has passed (the API has withdrawn it or is
about to), claims it, performs it and replies. Only the claimer acts: an operation the API gave
up on never takes effect afterwards.
"""

from __future__ import annotations

import threading
import time

import structlog
from redis import RedisError

from executor_service.errors import ServiceError
from executor_service.jobs.session_commands import Refused, SessionCommand
from executor_service.worker.context import WorkerContext
from executor_service.worker.session_ops import SessionOperations

log = structlog.get_logger(__name__)
TAKE_S = 1.0


class SessionOpServer:
    def __init__(self, context: WorkerContext) -> None:
        self._ctx = context
        self._operations = SessionOperations(context)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"session-ops-{n}", daemon=True)
            for n in range(context.settings.session_op_threads)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Take no more commands; one being performed finishes (each take waits <= TAKE_S)."""
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=TAKE_S + 1)

    def _loop(self) -> None:
        queue = self._ctx.stores.session_ops
        while not self._stop.is_set():
            try:
                taken = queue.take(TAKE_S)
                if taken is None:
                    continue
                command, blob = taken
                if command.claim_by < time.time() or not queue.claim(command.id):
                    log.info("session operation withdrawn; left alone", command_id=command.id)
                    continue
                self._serve(command, blob)
            except RedisError:
                log.warning("session operations: Redis unavailable; retrying", exc_info=True)
                self._stop.wait(1.0)

    def _serve(self, command: SessionCommand, blob: bytes | None) -> None:
        queue = self._ctx.stores.session_ops
        try:
            reply, data = self._operations.perform(command, blob)
        except ServiceError as exc:
            queue.reply(command.id, Refused(code=exc.code, message=exc.message, field=exc.field))
            return
        except Exception as exc:
            log.exception("session operation crashed", command_id=command.id)
            message = f"the worker failed: {type(exc).__name__}"
            queue.reply(command.id, Refused(code="internal_error", message=message))
            return
        queue.reply(command.id, reply, data)
