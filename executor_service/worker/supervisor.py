"""Keep one Celery worker process alive: start it, restart it if it dies, stop it on a signal.

Celery gives up for good on some broker errors (an ack refused by a Redis out of memory is
"unrecoverable"), and a dead worker serves nothing until someone notices. The supervisor
restarts it with a growing pause; the child dies with the supervisor (PDEATHSIG), so killing
the supervisor is killing the worker, as an operator expects.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from types import FrameType

import structlog

log = structlog.get_logger(__name__)

PR_SET_PDEATHSIG = 1
MAX_PAUSE_S = 30.0
STEADY_S = 60.0  # a child that lived this long restarts without the grown pause


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def supervise(command: Sequence[str]) -> int:
    stopping = threading.Event()
    child: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopping.set()
        if child and child[0].poll() is None:
            child[0].send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    pause = 1.0
    while True:
        started = time.monotonic()
        child[:] = [subprocess.Popen(list(command), preexec_fn=_die_with_parent)]  # noqa: S603 - our own module, fixed arguments
        code = child[0].wait()
        if stopping.is_set():
            return code
        pause = 1.0 if time.monotonic() - started > STEADY_S else min(pause * 2, MAX_PAUSE_S)
        log.error("worker process died; restarting", exit_code=code, pause_s=pause)
        if stopping.wait(pause):
            return code
