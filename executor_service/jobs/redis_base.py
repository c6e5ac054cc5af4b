"""What every Redis-backed store shares: the client's timeouts and retries, key names, and the one
optimistic-update loop (WATCH, read, MULTI, write) that checked transitions are built on.

Every blocking call (BLPOP, XREAD BLOCK) waits at most MAX_BLOCK_S, well under the client's socket
timeout, so a long wait is a loop of short ones and never surfaces as a TimeoutError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

PREFIX = "as:"
SOCKET_TIMEOUT_S = 10.0

T = TypeVar("T")


def key(*parts: str) -> str:
    return PREFIX + ":".join(parts)


def connect(url: str, *, decode: bool = True) -> redis.Redis:
    """A client that rides out a short blip (a restart, a failover) with a few quick retries."""
    return redis.Redis.from_url(
        url,
        decode_responses=decode,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=5.0,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


class Abort(Exception):
    """Raised inside a `watched` reader to stop without writing; carries the value to return."""

    def __init__(self, value: object) -> None:
        super().__init__()
        self.value = value


def watched(
    client: redis.Redis,
    keys: list[str],
    read: Callable[[Any], T],
    write: Callable[[Any, T], None],
) -> T:
    """Read `keys` under WATCH, then queue `write` in MULTI; retry if another writer came first.

    `read(pipe)` runs in immediate mode and may `raise Abort(value)` to end without writing (that
    value is returned) or raise any other error to the caller. What it returns is passed to
    `write(pipe, value)`, which queues the commands, and is returned once they are applied.
    """
    pipe: Any = client.pipeline()
    with pipe:
        while True:
            try:
                pipe.watch(*keys)
                try:
                    value = read(pipe)
                except Abort as stop:
                    pipe.unwatch()
                    return stop.value  # type: ignore[return-value]
                except BaseException:
                    pipe.unwatch()
                    raise
                pipe.multi()
                write(pipe, value)
                pipe.execute()
                return value
            except redis.WatchError:
                continue
