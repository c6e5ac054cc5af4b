"""One thread per worker process turns the store's cancel flags into the Events the runs watch.

A thread per execution polling its own flag cost a thread start and a round trip per run per
tick; this one asks about every run of the process in one round trip per tick, and sleeps
without asking while the process runs nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from redis import RedisError

from executor_service.errors import StoreUnavailable
from executor_service.jobs.store import ExecutionStore


class CancelWatch:
    """`watching(id)` gives a run the threading.Event that is set once a cancel of it is seen,
    within about `poll_s` (the first check comes `poll_s` after the run starts)."""

    def __init__(self, store: ExecutionStore, poll_s: float) -> None:
        self._store = store
        self._poll_s = poll_s
        self._lock = threading.Condition()
        self._runs: dict[threading.Event, str] = {}  # each run's event -> its execution id
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watching(self, execution_id: str) -> Iterator[threading.Event]:
        cancel = threading.Event()
        with self._lock:
            self._runs[cancel] = execution_id
            self._start()
            self._lock.notify()
        try:
            yield cancel
        finally:
            with self._lock:
                del self._runs[cancel]

    def stop(self) -> None:
        """End the thread (worker shutdown); runs still watched are no longer told of cancels."""
        with self._lock:
            self._stopping.set()
            self._lock.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _start(self) -> None:
        # Started by the first run, so any context (the worker's, a test's) watches on demand.
        if self._thread is None and not self._stopping.is_set():
            self._thread = threading.Thread(target=self._watch, name="cancel-watch", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while True:
            with self._lock:
                while not self._runs and not self._stopping.is_set():
                    self._lock.wait()
            if self._stopping.wait(self._poll_s):
                return
            with self._lock:
                pending = {run: ident for run, ident in self._runs.items() if not run.is_set()}
            if not pending:
                continue
            try:
                flagged = self._store.cancels_requested(set(pending.values()))
            except (RedisError, StoreUnavailable):
                continue  # Redis is away: ask again on the next tick
            for event, ident in pending.items():
                if ident in flagged:
                    event.set()
