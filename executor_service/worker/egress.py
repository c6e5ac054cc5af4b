"""Egress around a run: the worker's proxy, one gate per execution, and the gates' directories.

Each sandbox that may reach an allowlist has a directory of its own on the host (its id's name
under `egress_dir`), mounted read-only in the sandbox. A gate (the proxy listening on a socket
there) is open only while one of its executions runs, so every connection is judged by that
execution's grant and lands in that execution's log, whichever worker runs it. Between a session's
runs nothing listens, and its relay finds no socket.
"""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from executor_service.egress.audit import EgressLog, EgressRecord
from executor_service.egress.proxy import EgressProxy
from executor_service.egress.rules import EgressGrant
from executor_service.sandbox.hardening import EGRESS_SOCKET
from executor_service.sandbox.spec import RunResult
from executor_service.settings import Settings

log = structlog.get_logger(__name__)


@dataclass
class EgressOutcome:
    """Filled in when the gate closes: the log the run's result will carry."""

    log: EgressLog = field(default_factory=EgressLog)

    def attach(self, result: RunResult) -> RunResult:
        if not self.log.records and not self.log.dropped:
            return result
        return result.model_copy(
            update={"egress": self.log.records, "egress_dropped": self.log.dropped}
        )


class EgressGates:
    """The worker process's one proxy, started on first use, and the directories it serves."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._proxy: EgressProxy | None = None
        self._lock = threading.Lock()

    def _started(self) -> EgressProxy:
        with self._lock:
            if self._proxy is None:
                settings = self._settings
                networks = settings.egress_unsafe_test_networks
                relaxed = [ipaddress.ip_network(net) for net in networks]
                if relaxed:
                    log.warning(
                        "egress proxy may reach private test networks",
                        networks=[str(net) for net in relaxed],
                    )
                self._proxy = EgressProxy(
                    extra_hosts=dict(settings.egress_extra_hosts), relaxed_networks=relaxed
                )
            return self._proxy

    @contextlib.contextmanager
    def opened(
        self,
        directory: str | None,
        grant: EgressGrant | None,
        on_record: Callable[[EgressRecord], None],
        *,
        remove_after: bool,
    ) -> Iterator[EgressOutcome]:
        """Let the sandbox at `directory` reach `grant` for the duration of the block.

        No directory or no grant: nothing opens and the outcome stays empty. `remove_after`
        removes the directory too (a single-use sandbox's; a session's stays for its next run).
        """
        outcome = EgressOutcome()
        if directory is None or grant is None:
            yield outcome
            return
        path = Path(directory)
        self.make_dir(path)
        gate = self._started().open_gate(path / EGRESS_SOCKET, grant, on_record=on_record)
        try:
            yield outcome
        finally:
            outcome.log = gate.close()
            if remove_after:
                self.remove_dir(path)

    def make_dir(self, directory: str | Path) -> None:
        """The engine bind-mounts it, so it must exist before the sandbox is created.

        The root is traversable but not listable by other host users; the sandbox's relay (an
        unprivileged uid) needs to reach the socket inside.
        """
        root = self._settings.egress_dir
        root.mkdir(mode=0o711, parents=True, exist_ok=True)
        Path(directory).mkdir(mode=0o755, exist_ok=True)

    def remove_dir(self, directory: str | Path) -> None:
        shutil.rmtree(directory, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            if self._proxy is not None:
                self._proxy.close()
                self._proxy = None
