"""CancellationToken: one object a caller keeps to stop a run, however deep the await it is in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class CancellationToken:
    """Cancels every future linked to it; linking after cancel cancels at once.

    Teams link the task that runs the current agent turn, so ``cancel()`` reaches a model call
    or a remote execution and lets each clean up (the remote executor cancels its execution).
    """

    def __init__(self) -> None:
        self._cancelled = False
        self._callbacks: list[Callable[[], None]] = []

    def cancel(self) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def add_callback(self, callback: Callable[[], None]) -> None:
        if self._cancelled:
            callback()
        else:
            self._callbacks.append(callback)

    def link(self, future: asyncio.Future[Any]) -> None:
        """Cancel ``future`` when this token is cancelled."""

        def cancel_future() -> None:
            future.cancel()

        self.add_callback(cancel_future)
