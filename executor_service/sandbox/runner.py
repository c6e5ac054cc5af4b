"""The contract every sandbox backend meets, so the worker never learns which engine it drives."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from executor_service.sandbox.spec import Program, RunResult, SandboxConfig

Stream = Literal["stdout", "stderr"]
OutputCallback = Callable[[Stream, bytes], None]

# Every container we create carries MANAGED_LABEL, whose value is the deployment's instance name
# (settings.instance: the reapers filter on it); DEADLINE_LABEL (epoch seconds) tells the reaper
# when it may be removed whatever state its owner is in; UID_LABEL records the uid its code runs as;
# POOL_LABEL names the worker process whose pool made it (its members die with that worker).
MANAGED_LABEL = "agent-sandbox.managed"
DEADLINE_LABEL = "agent-sandbox.deadline"
UID_LABEL = "agent-sandbox.uid"
POOL_LABEL = "agent-sandbox.pool"


@dataclass(frozen=True)
class Sandbox:
    """A prepared, running, hardened container that waits for code.

    `single_use` sandboxes are destroyed after their one run (and killed on a timeout); session
    sandboxes live on between runs, and a timeout kills only the run's processes. A handle can be
    rebuilt from the id alone in another process (the id is the container's). Each sandbox's code
    runs as a uid of its own: `prepare` records it in `code_uid`; a rebuilt handle leaves it None
    and the runner reads it from the container once.
    """

    id: str
    config: SandboxConfig
    single_use: bool = True
    code_uid: int | None = None
    # A launcher waits in it for exactly one job, on the stream the runner that made it holds.
    launched: bool = False


@dataclass(frozen=True)
class PoolState:
    """What /metrics shows of one worker's warm pool; counts are since the worker started."""

    idle: int
    keys: int
    hits: int
    misses: int
    discarded: int  # members found dead or expired, never handed out


# How many names a listing returns by default; a workspace may hold far more.
MAX_LIST_ENTRIES = 10_000


@dataclass(frozen=True)
class WorkspaceFile:
    path: str  # relative to the workspace
    size_bytes: int


@dataclass(frozen=True)
class FileListing:
    """The regular files of a workspace that fit in one listing; `truncated` says more exist."""

    files: list[WorkspaceFile]
    truncated: bool


class SandboxRunner(Protocol):
    """Prepare hardened sandboxes, run programs in them, and clean up after them."""

    def prepare(
        self, config: SandboxConfig, *, single_use: bool = True, lifetime_s: float | None = None
    ) -> Sandbox:
        """Start a hardened container that idles until `run` is called.

        `lifetime_s` bounds how long the container may exist before the reaper removes it; by
        default a single-use sandbox gets its wall-time limit plus a grace period.
        """
        ...

    def run(
        self,
        sandbox: Sandbox,
        program: Program,
        *,
        on_output: OutputCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        """Run one program; a single-use sandbox is destroyed before this returns."""
        ...

    def run_once(
        self,
        config: SandboxConfig,
        program: Program,
        *,
        on_output: OutputCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        """Prepare a single-use sandbox, run one program in it, and remove it."""
        ...

    def put_files(self, sandbox: Sandbox, files: Mapping[str, bytes]) -> None:
        """Write files into the workspace (paths relative to it), making missing directories.

        Files are written in order and each replaces any file of its name whole. Raises UnsafePath
        for a path that escapes the workspace or passes through a symlink (any component, the last
        too); InvalidRequest when a parent is not a directory, the target is a directory, or a
        directory is not writable; PayloadTooLarge when a file does not fit in the workspace.
        Files before the refused one stay written.
        """
        ...

    def list_files(self, sandbox: Sandbox, *, max_entries: int = MAX_LIST_ENTRIES) -> FileListing:
        """Regular files in the workspace, recursively, sorted; symlinks are not followed.

        At most `max_entries` files come back (which ones is up to the engine), with `truncated`
        set when there were more: a full workspace is a listing, never an error.
        """
        ...

    def read_file(self, sandbox: Sandbox, path: str, *, max_bytes: int) -> bytes:
        """One regular file of the workspace, whole.

        Raises PayloadTooLarge when it is larger than max_bytes (decided from its size, before
        any byte is sent); UnsafePath when the path escapes the workspace or passes through a
        symlink; NotFound when there is no regular file at that path (a directory, say);
        InvalidRequest when the code made it unreadable.
        """
        ...

    def destroy(self, sandbox_id: str) -> None:
        """Kill and remove a sandbox; removing one that is already gone is not an error."""
        ...

    def destroy_labelled(self, labels: Mapping[str, str]) -> int:
        """Kill and remove every sandbox carrying all these labels; return how many."""
        ...

    def reap(self, *, everything: bool = False) -> int:
        """Remove sandboxes past their deadline label (all of ours with everything=True)."""
        ...

    def reap_orphans(self, owner_alive: Callable[[str], bool]) -> int:
        """Remove warm-pool sandboxes whose worker (POOL_LABEL) `owner_alive` says is gone."""
        ...

    def close(self) -> None:
        """Release what the runner holds (a pool's idle sandboxes, background removals)."""
        ...

    def warm(self, configs: list[SandboxConfig]) -> None:
        """Keep sandboxes like these started ahead of need, if this runner has a pool."""
        ...

    def pool_state(self) -> PoolState | None:
        """The warm pool's numbers; None for a runner without one."""
        ...

    def present_images(self, refs: Collection[str]) -> frozenset[str]:
        """Those of these image references the engine holds (the janitor reports them)."""
        ...
