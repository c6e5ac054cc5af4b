"""What the in-memory stores share: one condition standing for one Redis, and the wire round trip.

Redis runs one command at a time, so every in-memory store takes the same lock for each call; a
blocking read waits on the condition and every write that could satisfy one wakes it. Records go
through their JSON form on the way in, as they do into Redis, so a model that cannot make that
trip fails here too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class Shared:
    """The one lock of every in-memory store; reentrant, so a caller's `change` may read back."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.RLock())

    def wait_for(self, ready: Callable[[], T | None], timeout_s: float) -> T | None:
        """The first value of `ready()` that is not None, waiting up to timeout_s for one."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while True:
                value = ready()
                if value is not None:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)

    def wake(self) -> None:
        """Called with the lock held, after a write a blocked reader may be waiting for."""
        self.cond.notify_all()


def wire(model: M) -> M:
    """The model as a reader gets it back from Redis: serialised and validated again."""
    return type(model).model_validate_json(model.model_dump_json())


def alive(expires_at: float | None, now: float) -> bool:
    """Whether something with this deadline (None: none) still exists, as Redis expires keys."""
    return expires_at is None or now < expires_at
