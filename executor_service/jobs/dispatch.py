"""How executions reach the workers: the Celery configuration both sides share, the sender, and
a look at what the broker holds, so a message lost on the way can be sent again.

Each message's task id is the execution's id, its argument that id; everything else is in the
store. A small record also rides along, as stored at admission, so that the worker's claim can
compare-and-set it without reading it first (a record changed since, cancelled say, makes the
claim read it). Session operations do not use Celery at all (see session_calls).

The sender does not go through Celery: `send_task` spent about a millisecond of the API's CPU on
every submission (routing, a producer from kombu's pool, a new Redis client) to make one LPUSH
of a message that differs between executions only by its id. `task_message` writes that message
itself, in Celery's task protocol 2 as kombu's Redis transport stores it; the workers consume it
with Celery as before. A test holds it equal to what `send_task` sends.

At admission the store pushes the message in the same step as it writes the record (a
`QueueEntry`): an admitted execution always has its message, with no second round trip and no
window in which an API that dies leaves a record for the reconciler to find. Only a message sent
again (`Dispatcher.submit`) is an LPUSH of its own.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from executor_service.errors import Overloaded
from executor_service.settings import Settings

EXECUTE_TASK = "agent_sandbox.execute"
QUEUE = "agent-sandbox"
RETRY_AFTER_S = 5
# Records up to this size travel with their message (most do: the code is most of one). A
# larger one stays only in the store, so a full queue holds no second copy of big programs.
RECORD_IN_MESSAGE_MAX = 32 * 1024


def celery_config(settings: Settings) -> dict[str, Any]:
    """Delivery is made safe by the store, not by the broker.

    An execution is claimed once in the store before it runs, so a message delivered twice is
    a no-op; a claimed execution whose worker died is failed by the janitor; and one still
    queued with no message in the broker (taken by a worker that died before its claim, or lost
    by the broker) is sent again by the reconciler after `requeue_after_s`. kombu's emulation of
    acknowledgements (a hash and a sorted set of delivered messages, written on every delivery
    and every ack, redelivered after a visibility timeout) would only do the reconciler's job
    later, for about a millisecond of a worker's CPU per execution: it is off. A worker takes at
    most one message per free slot (prefetch 1, acks late), so none waits unclaimed inside it.
    Celery's own time limits are not set: the threads pool ignores them, and the runner's
    wall-clock kill bounds every run. Remote control is off: nothing here sends worker commands,
    and its broadcast queue was one more subscription the event loop serviced on every pass
    (workers report their liveness through the store, not Celery's events).
    """
    return {
        "broker_url": settings.redis_url,
        "broker_transport_options": {"ack_emulation": False},
        "broker_connection_retry_on_startup": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # A broker blip must not kill runs in flight: their results are written to the store,
        # and a message redelivered meanwhile is refused by the claim.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": QUEUE,
        "worker_hijack_root_logger": False,
        "worker_enable_remote_control": False,
        "worker_concurrency": settings.worker_concurrency,
    }


# The task's [args, kwargs, embed] carry the id and the record: the rest of the body is constant.
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def record_repr(record: str | None) -> str:
    """The kwargs as Celery's headers (and logs) show them: the record's size, not its code."""
    return "{}" if record is None else repr({"record": f"<{len(record)} bytes>"})


def task_message(execution_id: str, origin: str, record: str | None = None) -> str:
    """The queue entry `send_task(EXECUTE_TASK, args=[id], kwargs={"record": record},
    kwargsrepr=record_repr(record), task_id=id, queue=QUEUE)` makes (no kwargs without one).

    Celery's task protocol 2 (headers name the task and its id; the body is [args, kwargs,
    embed]), wrapped as kombu's Redis transport keeps a message in a list: JSON with the body in
    base64 and a delivery tag of its own.
    """
    kwargs = {} if record is None else {"record": record}
    body = json.dumps([[execution_id], kwargs, _EMBED]).encode()
    return json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py",
                "task": EXECUTE_TASK,
                "id": execution_id,
                "shadow": None,
                "eta": None,
                "expires": None,
                "group": None,
                "group_index": None,
                "retries": 0,
                "timelimit": [None, None],
                "root_id": execution_id,
                "parent_id": None,
                "argsrepr": repr([execution_id]),
                "kwargsrepr": record_repr(record),
                "origin": origin,
                "ignore_result": True,
                "replaced_task_nesting": 0,
                "stamped_headers": None,
                "stamps": {},
            },
            "properties": {
                "correlation_id": execution_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": QUEUE},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


@dataclass(frozen=True)
class QueueEntry:
    """A task message and the broker list it goes on: opaque to the store that pushes it."""

    queue: str
    message: str


class Dispatcher:
    """Writes the workers' task messages; sends one again on its own (one LPUSH)."""

    def __init__(self, broker: redis.Redis) -> None:
        self._broker = broker
        self._origin = f"{os.getpid()}@{socket.gethostname()}"  # as Celery names a sender

    def entry(self, execution_id: str, record: str | None = None) -> QueueEntry:
        """The execution's message; `record`, its JSON as the store holds it, goes along when
        small."""
        if record is not None and len(record) > RECORD_IN_MESSAGE_MAX:
            record = None
        return QueueEntry(QUEUE, task_message(execution_id, self._origin, record))

    def submit(self, execution_id: str, record: str | None = None) -> None:
        """Queue the execution's message by itself (the reconciler's, for a message lost)."""
        entry = self.entry(execution_id, record)
        try:
            self._broker.lpush(entry.queue, entry.message)
        except redis.RedisError as exc:
            raise Overloaded(
                f"the queue is unreachable: {exc}", retry_after_s=RETRY_AFTER_S
            ) from exc


def broker_task_ids(client: redis.Redis) -> set[str]:
    """Task ids of every message waiting in the queue.

    An execution that is queued in the store and has no message there was lost between the
    broker and a worker (a worker killed between its fetch and its claim, a broker that lost
    writes): its message was taken, and the execution was never claimed.
    """
    found: set[str] = set()
    waiting: list[str] = client.lrange(QUEUE, 0, -1)  # type: ignore[assignment]
    for raw in waiting:
        found.update(_task_id(raw))
    return found


def _task_id(raw: str) -> list[str]:
    try:
        return [str(json.loads(raw)["headers"]["id"])]
    except (ValueError, KeyError, TypeError):
        return []
