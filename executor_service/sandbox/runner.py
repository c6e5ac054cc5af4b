"""The contract every sandbox backend meets, so the worker never learns which engine it drives."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from executor_service.sandbox.spec import Program, RunResult, SandboxConfig

Stream = Literal["stdout", "stderr"]
OutputCallback = Callable[[Stream, bytes], None]

# Every container we create carries MANAGED_LABEL; DEADLINE_LABEL (epoch seconds) tells the reaper
# when it may be removed whatever state its owner is in.
MANAGED_LABEL = "agent-sandbox.managed"
DEADLINE_LABEL = "agent-sandbox.deadline"


@dataclass(frozen=True)
class Sandbox:
    """A prepared, running, hardened container that waits for code.

    `single_use` sandboxes are destroyed after their one run (and killed on a timeout); session
    sandboxes live on between runs, and a timeout kills only the run's processes. A handle can be
    rebuilt from the id alone in another process (the id is the container's).
    """

    id: str
    config: SandboxConfig
    single_use: bool = True


@dataclass(frozen=True)
class WorkspaceFile:
    path: str  # relative to the workspace
    size_bytes: int


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
        """Write files into the workspace (paths relative to it, checked for escapes)."""
        ...

    def list_files(self, sandbox: Sandbox) -> list[WorkspaceFile]:
        """Regular files in the workspace, recursively; symlinks are not followed."""
        ...

    def read_file(self, sandbox: Sandbox, path: str, *, max_bytes: int) -> bytes:
        """One regular file of the workspace; larger than max_bytes raises PayloadTooLarge."""
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
