"""A worker container's health check: healthy while a Celery process here keeps its heartbeat.

`executor-service worker` supervises one Celery process (`... worker --unsupervised`), which
heartbeats in Redis as `<hostname>:<pid>`. A supervisor whose child is dead, restarting or
wedged has no fresh heartbeat, so the process being up is not enough: the heartbeat is asked.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from executor_service.jobs.redis_store import redis_stores
from executor_service.settings import Settings


def celery_pids() -> list[int]:
    """Processes of this container running the unsupervised Celery worker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended while we looked
        if b"executor_service.cli" in argv and b"--unsupervised" in argv:
            found.append(int(entry.name))
    return found


def main() -> int:
    pids = celery_pids()
    if not pids:
        print("no Celery worker process in this container")
        return 1
    stores, client = redis_stores(Settings())
    try:
        host = socket.gethostname()
        if any(stores.workers.alive(f"{host}:{pid}") for pid in pids):
            return 0
    finally:
        client.close()
    print(f"no fresh heartbeat in Redis from {host}:{','.join(map(str, pids))}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
