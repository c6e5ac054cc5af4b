"""A warm pool of single-use sandboxes in front of the Docker runner.

Creating and starting a hardened container is most of a fresh run's time, so each worker process
keeps a few started ahead of need, per key: everything the container is made from (image, runtime,
limits, mounts). A member is handed out at most once, checked alive first, and destroyed after its
run like any single-use sandbox; a replacement is started in the background. A member waiting for
work holds nothing of any tenant: no execution's labels, files, environment or network (a sandbox
with egress has its own proxy directory, so it is never pooled). Where the image has Python, a
member waits with a ready interpreter (see launcher.py).

Members carry the pool's label (its worker's name) and a deadline past their idle expiry plus one
run, so the reaper removes them whatever becomes of their worker, and the janitor removes those of
a worker that is gone as soon as its heartbeat is.

The pool sits behind the runner protocol: the worker prepares and runs sandboxes as before.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import structlog

from executor_service.errors import ServiceError
from executor_service.sandbox.docker_runner import DockerRunner
from executor_service.sandbox.runner import (
    MAX_LIST_ENTRIES,
    POOL_LABEL,
    FileListing,
    OutputCallback,
    PoolState,
    Sandbox,
)
from executor_service.sandbox.spec import Limits, Mount, Program, RunResult, SandboxConfig

log = structlog.get_logger(__name__)

PoolKey = tuple[str, str | None, Limits, tuple[Mount, ...], bool]
REFILL_TICK_S = 1.0  # after an engine failure, before the next try
EXPIRY_SLACK_S = 0.01  # a wait for an expiry that is (just) due still sleeps this long
# Members started at once: one engine start is mostly waiting (on runc, on the disk), so two in
# flight keep up with several clients' churn on two cores where one does not.
REFILL_THREADS = 2


def pool_key(config: SandboxConfig) -> PoolKey | None:
    """What a member must share with a request to serve it; None: never pooled (egress)."""
    if config.egress_dir is not None:
        return None
    return (config.image, config.runtime, config.limits, config.mounts, config.ready_python)


@dataclass(frozen=True)
class _Member:
    sandbox: Sandbox
    created: float  # time.monotonic()


class PooledRunner:
    """The Docker runner, with single-use sandboxes taken from a warm pool when one fits."""

    def __init__(
        self,
        runner: DockerRunner,
        *,
        owner: str,
        size: int,
        idle_s: float,
        max_keys: int,
    ) -> None:
        self._runner = runner
        self._owner = owner
        self._size = size
        self._idle_s = idle_s
        self._max_keys = max_keys
        self._idle: dict[PoolKey, deque[_Member]] = {}
        self._templates: dict[PoolKey, SandboxConfig] = {}
        self._last_wanted: dict[PoolKey, float] = {}
        self._pinned: set[PoolKey] = set()
        self._hits = self._misses = self._discarded = 0
        self._changed = threading.Condition()
        self._stopping = False
        self._removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pool-remove")
        self._creating: dict[PoolKey, int] = {}  # members being started, by key
        self._threads = [
            threading.Thread(target=self._refill_forever, name=f"pool-{n}", daemon=True)
            for n in range(REFILL_THREADS)
        ]
        for thread in self._threads:
            thread.start()

    # -- the pool ----------------------------------------------------------------------------

    def warm(self, configs: list[SandboxConfig]) -> None:
        """Keep these keys warm from now on, whether asked for lately or not."""
        with self._changed:
            for config in configs:
                key = pool_key(config)
                if key is not None and len(self._pinned) < self._max_keys:
                    self._pinned.add(key)
                    self._templates[key] = _template(config)
                    self._idle.setdefault(key, deque())
            self._changed.notify_all()

    def pool_state(self) -> PoolState:
        with self._changed:
            return PoolState(
                idle=sum(len(queue) for queue in self._idle.values()),
                keys=len(self._idle),
                hits=self._hits,
                misses=self._misses,
                discarded=self._discarded,
            )

    def _take(self, key: PoolKey, config: SandboxConfig) -> Sandbox | None:
        """An idle member for this key, checked alive and unexpired; None if there is none."""
        stale: list[Sandbox] = []
        chosen: Sandbox | None = None
        with self._changed:
            self._want(key, config)
            queue = self._idle[key]
            while queue and chosen is None:
                member = queue.popleft()
                fresh = time.monotonic() - member.created < self._idle_s
                if fresh and self._runner.alive(member.sandbox):
                    chosen = member.sandbox
                else:
                    stale.append(member.sandbox)
            self._discarded += len(stale)
            if chosen is None:
                self._misses += 1
            else:
                self._hits += 1
            # Every refill thread: notify() woke one, and the other slept out its tick, so one
            # engine start at a time could not keep up with a client's back-to-back runs.
            self._changed.notify_all()
            for sandbox in stale:
                self._destroy_later(sandbox.id)  # not on the request's time
        return chosen

    def _want(self, key: PoolKey, config: SandboxConfig) -> None:
        """Note a key as wanted (the lock is held); past max_keys the least wanted one goes."""
        self._last_wanted[key] = time.monotonic()
        if key in self._idle:
            return
        self._idle[key] = deque()
        self._templates[key] = _template(config)
        unpinned = [k for k in self._idle if k not in self._pinned]
        while len(self._idle) > self._max_keys and unpinned:
            oldest = min(unpinned, key=lambda k: self._last_wanted.get(k, 0.0))
            unpinned.remove(oldest)
            self._drop_key(oldest)

    def _drop_key(self, key: PoolKey) -> None:
        for member in self._idle.pop(key, deque()):
            self._discarded += 1
            self._destroy_later(member.sandbox.id)
        self._templates.pop(key, None)
        self._last_wanted.pop(key, None)

    def _refill_forever(self) -> None:
        while True:
            with self._changed:
                if self._stopping:
                    return
                self._expire()
                wanted = [
                    (key, self._templates[key])
                    for key, queue in self._idle.items()
                    if len(queue) + self._creating.get(key, 0) < self._size
                ]
                if not wanted:
                    # Until the next expiry is due or a take, a new key or stop wakes us: an idle
                    # worker's threads sleep instead of checking every second.
                    self._changed.wait(self._next_expiry_in())
                    continue
                key, template = wanted[0]
                self._creating[key] = self._creating.get(key, 0) + 1
            member = self._create(template)
            with self._changed:
                self._creating[key] -= 1
                if member is None:
                    self._changed.wait(REFILL_TICK_S)  # the engine failed: do not spin on it
                    continue
                if self._stopping or key not in self._idle:
                    self._destroy_later(member.sandbox.id)
                else:
                    self._idle[key].append(member)

    def _next_expiry_in(self) -> float:
        """Seconds until `_expire` has something to do (the lock is held)."""
        now = time.monotonic()
        due = [queue[0].created for queue in self._idle.values() if queue]
        due += [self._last_wanted.get(k, now) for k in self._idle if k not in self._pinned]
        return max(min(due, default=now) + self._idle_s - now, EXPIRY_SLACK_S)

    def _expire(self) -> None:
        """Drop members past their idle time, and keys nobody asked for in as long (lock held)."""
        now = time.monotonic()
        for key, queue in list(self._idle.items()):
            while queue and now - queue[0].created >= self._idle_s:
                self._discarded += 1
                self._destroy_later(queue.popleft().sandbox.id)
            idle_for = now - self._last_wanted.get(key, now)
            if key not in self._pinned and idle_for >= self._idle_s:
                self._drop_key(key)

    def _create(self, template: SandboxConfig) -> _Member | None:
        try:
            sandbox = self._runner.prepare_member(
                template,
                lifetime_s=self._idle_s + template.limits.wall_time_s,
                labels={POOL_LABEL: self._owner},
            )
        except ServiceError as exc:
            log.warning("pool could not start a sandbox", error=exc.message)
            return None
        return _Member(sandbox, time.monotonic())

    def _destroy_later(self, sandbox_id: str) -> None:
        self._removals.submit(self._destroy_quietly, sandbox_id)

    def _destroy_quietly(self, sandbox_id: str) -> None:
        try:
            self._runner.destroy(sandbox_id)
        except ServiceError:
            log.warning("pool could not remove a sandbox", sandbox=sandbox_id[:12])

    def close(self) -> None:
        """Stop refilling and remove every idle member, then close the runner."""
        with self._changed:
            self._stopping = True
            members = [member for queue in self._idle.values() for member in queue]
            self._idle.clear()
            self._changed.notify_all()  # every refill thread, each may sleep until an expiry
        for thread in self._threads:
            thread.join()
        for member in members:
            self._destroy_later(member.sandbox.id)
        self._removals.shutdown(wait=True)
        self._runner.close()

    def reap_orphans(self, owner_alive: Callable[[str], bool]) -> int:
        """Remove the members of pools whose worker is gone (killed before it could)."""
        return self._runner.reap_orphans(owner_alive)

    # -- the runner protocol -----------------------------------------------------------------

    def prepare(
        self, config: SandboxConfig, *, single_use: bool = True, lifetime_s: float | None = None
    ) -> Sandbox:
        key = pool_key(config) if single_use and lifetime_s is None and self._size else None
        member = None if key is None else self._take(key, config)
        if member is not None and config.name is not None:
            try:
                self._runner.rename(member.id, config.name)
            except ServiceError:
                self._destroy_later(member.id)
                member = None
        if member is None:
            return self._runner.prepare(config, single_use=single_use, lifetime_s=lifetime_s)
        # The caller's config (its labels, for one) describes the run; the container is the key's.
        return replace(member, config=config)

    def run(
        self,
        sandbox: Sandbox,
        program: Program,
        *,
        on_output: OutputCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        return self._runner.run(sandbox, program, on_output=on_output, cancel=cancel)

    def run_once(
        self,
        config: SandboxConfig,
        program: Program,
        *,
        on_output: OutputCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        sandbox = self.prepare(config)
        return self.run(sandbox, program, on_output=on_output, cancel=cancel)

    def put_files(self, sandbox: Sandbox, files: Mapping[str, bytes]) -> None:
        self._runner.put_files(sandbox, files)

    def list_files(self, sandbox: Sandbox, *, max_entries: int = MAX_LIST_ENTRIES) -> FileListing:
        return self._runner.list_files(sandbox, max_entries=max_entries)

    def read_file(self, sandbox: Sandbox, path: str, *, max_bytes: int) -> bytes:
        return self._runner.read_file(sandbox, path, max_bytes=max_bytes)

    def destroy(self, sandbox_id: str) -> None:
        self._runner.destroy(sandbox_id)

    def destroy_labelled(self, labels: Mapping[str, str]) -> int:
        return self._runner.destroy_labelled(labels)

    def reap(self, *, everything: bool = False) -> int:
        return self._runner.reap(everything=everything)

    def present_images(self, refs: Collection[str]) -> frozenset[str]:
        return self._runner.present_images(refs)


def _template(config: SandboxConfig) -> SandboxConfig:
    """The key's container, without anything of the request that first asked for it."""
    return replace(config, labels={}, name=None)
