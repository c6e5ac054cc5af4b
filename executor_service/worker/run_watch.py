"""One thread per worker process looks after every run in flight, a tick at a time: it turns the
store's cancel flags into the Events the runs watch, and gives each run its tick (the run writes
the output it held since the last one).

A thread per execution polling its own flag cost a thread start and a round trip per run per
tick; this one asks about every run of the process in one round trip per tick, and sleeps
without asking while the process runs nothing. A run shorter than a tick costs neither a check
nor a tick: its output goes with its final write.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog
from redis import RedisError

from executor_service.errors import StoreUnavailable
from executor_service.jobs.store import ExecutionStore

log = structlog.get_logger(__name__)

Tick = Callable[[], None]


def _no_tick() -> None:
    return None


class RunWatch:
    """`watching(id, tick)` gives a run the threading.Event that is set once a cancel of it is
    seen, and calls its `tick` at the same moments it asks about it.

    Each run is asked about `poll_s` after it starts and every `poll_s` after that, as its own
    thread used to (so a run shorter than `poll_s` costs no round trip); runs falling due within
    half a tick of each other are asked about together, in one round trip.
    """

    def __init__(self, store: ExecutionStore, poll_s: float) -> None:
        self._store = store
        self._poll_s = poll_s
        self._lock = threading.Condition()
        # run -> (next check, its id, its tick)
        self._due: dict[threading.Event, tuple[float, str, Tick]] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._sleeps_until_woken = False  # only then does a new run need to wake the thread

    @contextmanager
    def watching(self, execution_id: str, tick: Tick = _no_tick) -> Iterator[threading.Event]:
        cancel = threading.Event()
        with self._lock:
            self._due[cancel] = (time.monotonic() + self._poll_s, execution_id, tick)
            self._start()
            # A thread waiting with a timeout wakes no later than this run's first check: every
            # wait ends at a run's check or a tick after the last run, at most a tick from now.
            # Waking a thread costs more than a short run's other bookkeeping, so only one that
            # sleeps until woken is.
            if self._sleeps_until_woken:
                self._lock.notify()
        try:
            yield cancel
        finally:
            with self._lock:
                del self._due[cancel]

    def stop(self) -> None:
        """End the thread (worker shutdown); runs still watched are no longer told of cancels."""
        with self._lock:
            self._stopping = True
            self._lock.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _start(self) -> None:
        # Started by the first run, so any context (the worker's, a test's) watches on demand.
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(target=self._watch, name="run-watch", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        lingered = False  # the process ran nothing for a whole tick: sleep until woken
        while True:
            with self._lock:
                while not self._stopping:
                    now = time.monotonic()
                    soonest = min((due for due, _, _ in self._due.values()), default=None)
                    if soonest is not None and soonest <= now:
                        break
                    if soonest is None and lingered:
                        self._sleeps_until_woken = True
                        self._lock.wait()
                        self._sleeps_until_woken = False
                        continue
                    lingered = soonest is None
                    self._lock.wait(self._poll_s if soonest is None else soonest - now)
                if self._stopping:
                    return
                # Runs due within half a tick are asked about now, and not again for a tick.
                horizon = now + self._poll_s / 2
                asked = {
                    run: (ident, tick)
                    for run, (due, ident, tick) in self._due.items()
                    if due <= horizon
                }
                for run, (ident, tick) in asked.items():
                    self._due[run] = (now + self._poll_s, ident, tick)
            for ident, tick in asked.values():
                try:
                    tick()  # outside the lock: a tick writes to Redis
                except Exception:  # one run's tick must not end every run's watch
                    log.exception("a run's tick failed", execution_id=ident)
            try:
                flagged = self._store.cancels_requested({ident for ident, _ in asked.values()})
            except (RedisError, StoreUnavailable):
                continue  # Redis is away: ask again on the next tick
            for run, (ident, _tick) in asked.items():
                if ident in flagged:
                    run.set()
