"""A SandboxRunner that runs nothing: it records calls and plays a scripted run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from executor_service.errors import NotFound, PayloadTooLarge
from executor_service.sandbox.runner import (
    MAX_LIST_ENTRIES,
    FileListing,
    OutputCallback,
    PoolState,
    Sandbox,
    SandboxRunner,
    WorkspaceFile,
)
from executor_service.sandbox.spec import Program, RunResult, RunStatus, SandboxConfig

Script = Callable[[Program, OutputCallback | None, threading.Event | None], RunResult]


def ok_result(stdout: str = "") -> RunResult:
    return RunResult(status=RunStatus.OK, exit_code=0, stdout=stdout, stderr="", wall_time_s=0.01)


def echo_script(program: Program, on_output: OutputCallback | None, _: object) -> RunResult:
    """Print "hi" in two chunks that split a UTF-8 character, as a real stream may."""
    if on_output is not None:
        on_output("stdout", "h\u00e9".encode()[:2])
        on_output("stdout", "h\u00e9".encode()[2:] + b"\n")
    return ok_result("h\u00e9\n")


@dataclass
class FakeRunner:
    script: Script = echo_script
    prepared: list[SandboxConfig] = field(default_factory=list)
    programs: list[Program] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    destroyed_labels: list[dict[str, str]] = field(default_factory=list)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    reaps: int = 0
    images: frozenset[str] = frozenset()  # the references present_images finds
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def prepare(
        self, config: SandboxConfig, *, single_use: bool = True, lifetime_s: float | None = None
    ) -> Sandbox:
        with self._lock:
            self.prepared.append(config)
            sandbox_id = f"fake-{len(self.prepared)}"
        self.files[sandbox_id] = {}
        return Sandbox(id=sandbox_id, config=config, single_use=single_use)

    def run(
        self,
        sandbox: Sandbox,
        program: Program,
        *,
        on_output: OutputCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        with self._lock:
            self.programs.append(program)
        try:
            return self.script(program, on_output, cancel)
        finally:
            if sandbox.single_use:
                self.destroy(sandbox.id)

    def run_once(
        self,
        config: SandboxConfig,
        program: Program,
        *,
        on_output: OutputCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        return self.run(self.prepare(config), program, on_output=on_output, cancel=cancel)

    def put_files(self, sandbox: Sandbox, files: Mapping[str, bytes]) -> None:
        self.files.setdefault(sandbox.id, {}).update(files)

    def list_files(self, sandbox: Sandbox, *, max_entries: int = MAX_LIST_ENTRIES) -> FileListing:
        present = sorted(self.files.get(sandbox.id, {}).items())
        return FileListing(
            files=[
                WorkspaceFile(path=path, size_bytes=len(content))
                for path, content in present[:max_entries]
            ],
            truncated=len(present) > max_entries,
        )

    def read_file(self, sandbox: Sandbox, path: str, *, max_bytes: int) -> bytes:
        content = self.files.get(sandbox.id, {}).get(path)
        if content is None:
            raise NotFound(f"cannot read {path}: no such file", field="path")
        if len(content) > max_bytes:
            raise PayloadTooLarge(
                f"{path} is {len(content)} bytes, over the {max_bytes}-byte limit", field="path"
            )
        return content

    def destroy(self, sandbox_id: str) -> None:
        with self._lock:
            self.destroyed.append(sandbox_id)

    def destroy_labelled(self, labels: Mapping[str, str]) -> int:
        with self._lock:
            self.destroyed_labels.append(dict(labels))
        return 1

    def reap(self, *, everything: bool = False) -> int:
        self.reaps += 1
        return 0

    def reap_orphans(self, owner_alive: Callable[[str], bool]) -> int:
        return 0

    def close(self) -> None:
        return None

    def warm(self, configs: list[SandboxConfig]) -> None:
        self.warmed = list(configs)

    def pool_state(self) -> PoolState | None:
        return None

    def present_images(self, refs: Collection[str]) -> frozenset[str]:
        return self.images.intersection(refs)


def as_sandbox_runner(runner: FakeRunner) -> SandboxRunner:
    """The fake as the protocol; `mypy tests/unit/service/fake_runner.py` checks that it fits."""
    return runner
