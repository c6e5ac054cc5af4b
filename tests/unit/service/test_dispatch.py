"""The queue message the service writes itself is the one Celery's own sender writes, and a real
Celery consumer takes it as the task it names."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import redis
from celery import Celery

from executor_service.jobs.dispatch import (
    EXECUTE_TASK,
    QUEUE,
    RECORD_IN_MESSAGE_MAX,
    Dispatcher,
    broker_task_ids,
    celery_config,
    record_repr,
)
from executor_service.settings import Settings

# Differ from message to message by design: a fresh tag, the sending process, the reply queue
# Celery names for a result that nobody reads (task_ignore_result).
PER_MESSAGE = {("properties", "delivery_tag"), ("headers", "origin"), ("properties", "reply_to")}


def _without_per_message(message: dict[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(message))
    for section, name in PER_MESSAGE:
        copy[section].pop(name)
    return copy


def _queued(client: redis.Redis) -> list[dict[str, Any]]:
    raw: list[str] = client.lrange(QUEUE, 0, -1)  # type: ignore[assignment]
    return [json.loads(item) for item in reversed(raw)]  # LPUSH: oldest last


@pytest.mark.parametrize("record", [None, '{"id": "ex_1", "code": "print(1)"}'])
def test_the_message_is_the_one_celery_sends(
    service_settings: Settings, record: str | None
) -> None:
    client = redis.Redis.from_url(service_settings.redis_url, decode_responses=True)
    celery = Celery("agent-sandbox")
    celery.conf.update(celery_config(service_settings))
    celery.send_task(
        EXECUTE_TASK,
        args=["ex_1"],
        kwargs=None if record is None else {"record": record},
        kwargsrepr=record_repr(record),
        queue=QUEUE,
        task_id="ex_1",
        ignore_result=True,
    )
    Dispatcher(client).submit("ex_1", record)
    theirs, ours = _queued(client)
    # send_task copies its options into the properties too; the header is what consumers read.
    theirs["properties"].pop("kwargsrepr")
    assert _without_per_message(ours) == _without_per_message(theirs)
    assert base64.b64decode(ours["body"]) == base64.b64decode(theirs["body"])
    assert ours["properties"]["delivery_tag"] != theirs["properties"]["delivery_tag"]
    assert "print(1)" not in json.dumps(ours["headers"])  # the code stays out of the headers
    assert broker_task_ids(client) == {"ex_1"}
    celery.close()
    client.close()


def test_a_celery_consumer_receives_it_as_the_task(service_settings: Settings) -> None:
    client = redis.Redis.from_url(service_settings.redis_url, decode_responses=True)
    small, large = '{"id": "ex_2"}', "x" * (RECORD_IN_MESSAGE_MAX + 1)
    dispatcher = Dispatcher(client)
    dispatcher.submit("ex_2", small)
    dispatcher.submit("ex_3", large)
    celery = Celery("agent-sandbox")
    celery.conf.update(celery_config(service_settings))
    with celery.connection_for_read() as connection:
        queue = celery.amqp.queues[QUEUE]
        message = queue(connection.default_channel).get(no_ack=True)
        too_big = queue(connection.default_channel).get(no_ack=True)
    assert message is not None
    assert too_big is not None
    assert message.headers["task"] == EXECUTE_TASK
    assert message.headers["id"] == "ex_2"
    assert message.decode()[:2] == [["ex_2"], {"record": small}]  # args: the id; kwargs: the record
    assert too_big.decode()[:2] == [["ex_3"], {}]  # a large record stays in the store only
    assert message.delivery_info["routing_key"] == QUEUE
    assert client.llen(QUEUE) == 0
    celery.close()
    client.close()
