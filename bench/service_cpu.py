"""CPU the service's own processes spend per run: the API, and the worker with its children.

    uv run python bench/service_cpu.py --runs 50

Starts Redis, one worker and the API as real processes in a temporary state directory (as
bench/service_latency.py does), warms both paths up, then submits --runs session executions and
--runs fresh executions of `print(1)`, one at a time with wait=true. Around each batch it reads
utime+stime from /proc/<pid>/stat of every process in the API's tree and in the worker's tree
(the supervisor and its `worker --unsupervised` child; sandboxes are Docker's, not ours) and
prints CPU milliseconds per run by process. The engine's own CPU (dockerd, containerd, runc) is
outside both trees and is not counted.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.service_latency import own_service as latency_service

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
CODE = {"language": "python", "code": "print(1)", "wait": True, "wait_timeout_s": 60}


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, utime+stime in ms) of a live process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name may hold spaces; fields follow ")"
    return int(fields[1]), (int(fields[11]) + int(fields[12])) * 1000 / TICKS_PER_S


def tree_cpu_ms(root: int) -> dict[int, float]:
    """CPU ms of `root` and every live descendant, by pid (reaped children count in the parent's
    cutime, which we leave out: the worker's only children are long-lived)."""
    parents: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (found := _stat(int(entry))) is not None:
            parents[int(entry)] = found
    wanted = {root}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _) in parents.items():
            if ppid in wanted and pid not in wanted:
                wanted.add(pid)
                grew = True
    return {pid: parents[pid][1] for pid in wanted if pid in parents}


@contextmanager
def own_service() -> Iterator[tuple[str, str, dict[str, int]]]:
    """Redis, one worker (4 slots) and the API; yields (url, key, {"api": pid, "worker": pid})."""
    pids: dict[str, int] = {}
    with latency_service(4, pids) as (url, key):
        yield url, key, pids


def run_batch(client: httpx.Client, body: dict[str, object], runs: int) -> int:
    """Submit `runs` executions one at a time; how many did not print 1."""
    wrong = 0
    for _ in range(runs):
        answer = client.post("/v1/executions", json=body)
        result = answer.json().get("result") or {}
        wrong += answer.status_code != 200 or result.get("stdout") != "1\n"
    return wrong


def measure(url: str, key: str, pids: dict[str, int], runs: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=180) as client:
        session = client.post("/v1/sessions", json={"language": "python"})
        session.raise_for_status()
        in_session = {**CODE, "session_id": session.json()["id"]}
        batches = {"session": in_session, "fresh": CODE}
        for body in batches.values():
            run_batch(client, body, 3)  # warm-up: first container, imports, connections
        time.sleep(1.0)  # let start-up work (reaps, first sweeps) settle
        print(f"CPU ms per run ({runs} sequential runs of print(1), wait=true)")
        print(f"{'path':8} {'api':>8} {'worker':>8} {'wall ms':>8} {'wrong':>6}")
        for name, body in batches.items():
            before = {role: tree_cpu_ms(pid) for role, pid in pids.items()}
            started = time.perf_counter()
            wrong = run_batch(client, body, runs)
            wall = (time.perf_counter() - started) * 1000 / runs
            after = {role: tree_cpu_ms(pid) for role, pid in pids.items()}
            per_run = {
                role: sum(ms - before[role].get(pid, 0.0) for pid, ms in after[role].items()) / runs
                for role in pids
            }
            print(f"{name:8} {per_run['api']:8.1f} {per_run['worker']:8.1f} {wall:8.0f} {wrong:6}")
        client.delete(f"/v1/sessions/{session.json()['id']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with own_service() as (url, key, pids):
        measure(url, key, pids, args.runs)


if __name__ == "__main__":
    main()
