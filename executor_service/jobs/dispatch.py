"""How work reaches the workers: the Celery configuration both sides share, and the sender.

Tasks carry ids only; everything else is in the store. Session operations are small tasks whose
reply the API waits for with a bound: the worker pushes it to a Redis list the API pops, which
is thread-safe in the API's request threads (Celery's result consumer is not).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError

from executor_service.errors import Overloaded, SandboxError, error_for_code
from executor_service.jobs.store import JobStore
from executor_service.settings import Settings

EXECUTE_TASK = "agent_sandbox.execute"
SESSION_TASK = "agent_sandbox.session"
QUEUE = "agent-sandbox"
RETRY_AFTER_S = 5


def celery_config(settings: Settings) -> dict[str, Any]:
    """At-least-once delivery made safe by the store's claim: a redelivered message is a no-op."""
    visibility = settings.visibility_timeout_s
    # Time limits sit below the visibility timeout so Redis never redelivers a task still running.
    hard_limit = max(1, int(visibility * 0.9))
    return {
        "broker_url": settings.redis_url,
        "result_backend": settings.redis_url,
        "broker_transport_options": {"visibility_timeout": visibility},
        "result_backend_transport_options": {"visibility_timeout": visibility},
        "broker_connection_retry_on_startup": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": hard_limit,
        "task_soft_time_limit": max(1, hard_limit - 30),
        "task_ignore_result": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": QUEUE,
        "result_expires": 3600,
        "worker_hijack_root_logger": False,
        "worker_concurrency": settings.worker_concurrency,
    }


def create_sender(settings: Settings) -> Celery:
    """A Celery app that only sends; the API uses it and never registers a task."""
    app = Celery("agent-sandbox")
    app.conf.update(celery_config(settings))
    return app


class Dispatcher:
    def __init__(self, celery: Celery, store: JobStore, settings: Settings) -> None:
        self._celery = celery
        self._store = store
        self._settings = settings

    def submit(self, execution_id: str) -> None:
        try:
            self._celery.send_task(EXECUTE_TASK, args=[execution_id], queue=QUEUE)
        except OperationalError as exc:
            raise Overloaded(
                f"the queue is unreachable: {exc}", retry_after_s=RETRY_AFTER_S
            ) from exc

    def session_call(self, operation: str, session_id: str, **params: Any) -> dict[str, Any]:
        """Run one session operation on a worker and return its reply, or raise its error."""
        reply_to = uuid.uuid4().hex
        try:
            self._celery.send_task(
                SESSION_TASK, args=[operation, session_id, reply_to, params], queue=QUEUE
            )
        except OperationalError as exc:
            raise Overloaded(
                f"the queue is unreachable: {exc}", retry_after_s=RETRY_AFTER_S
            ) from exc
        raw = self._store.wait_reply(reply_to, self._settings.worker_op_timeout_s)
        if raw is None:
            raise SandboxError(
                f"no worker answered within {self._settings.worker_op_timeout_s:g} s"
            )
        reply: dict[str, Any] = json.loads(raw)
        error = reply.get("error")
        if error is not None:
            raise error_for_code(error["code"], error["message"], field=error.get("field"))
        result: dict[str, Any] = reply.get("ok") or {}
        return result
