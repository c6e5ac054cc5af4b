"""Submit executions while the service is being broken, then count what became of each.

    uv run python bench/fault_soak.py [--total 200] [--clients 4]

It starts its own stack (Redis with AOF, two supervised workers, the API), submits --total
executions from --clients threads, and meanwhile: SIGKILLs a worker, restarts Redis, takes
messages out of the broker as a worker killed mid-fetch would, and SIGKILLs the other worker.
Then it waits (bounded) for every accepted execution to end and prints, as JSON: submitted,
accepted, refused (answered 4xx/5xx at submission, which is a clear answer too), final by state,
stuck (accepted, never final), lost (accepted, then unknown), wrong (finished with another
output). Traffic goes only to the loopback servers it starts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from executor_service.jobs.dispatch import QUEUE
from tests.integration.service.stack import ServiceStack, service_stack

FINAL = {"finished", "failed", "cancelled"}


def submit_all(
    stack: ServiceStack, headers: dict[str, str], numbers: list[int], out: dict[int, Any]
) -> None:
    with httpx.Client(base_url=stack.url, headers=headers, timeout=30) as client:
        for n in numbers:
            body = {"language": "python", "code": f"import time\ntime.sleep(0.3)\nprint({n})"}
            try:
                response = client.post("/v1/executions", json=body)
            except httpx.TransportError as exc:
                out[n] = ("refused", type(exc).__name__)
                continue
            if response.status_code == 202:
                out[n] = ("accepted", response.json()["id"])
            else:
                out[n] = ("refused", response.status_code)
            time.sleep(0.4)  # spread submissions across the faults


def break_things(stack: ServiceStack, log: list[str]) -> None:
    def kill_worker(index: int) -> None:
        os.kill(stack.workers[index].pid, signal.SIGKILL)
        stack.workers[index].wait()
        replacement = stack.start_worker()  # appended; put it in the dead one's place
        stack.workers.remove(replacement)
        stack.workers[index] = replacement
        log.append(f"{time.strftime('%X')} SIGKILL worker {index}; started another")

    time.sleep(4)
    kill_worker(0)
    time.sleep(4)
    stack.redis.stop()
    log.append(f"{time.strftime('%X')} Redis stopped")
    time.sleep(2)
    stack.redis.start()
    log.append(f"{time.strftime('%X')} Redis started on its AOF")
    time.sleep(4)
    taken = sum(1 for _ in range(3) if stack.client.rpop(QUEUE) is not None)
    log.append(f"{time.strftime('%X')} took {taken} messages out of the broker")
    time.sleep(3)
    kill_worker(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--total", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--wait-s", type=float, default=300)
    args = parser.parse_args()
    env = {"EXECUTOR_REQUEUE_AFTER_S": "3", "EXECUTOR_LOG_LEVEL": "warning"}
    with service_stack(Path(tempfile.mkdtemp(prefix="as-soak-")), workers=2, **env) as stack:
        headers = stack.key("soak", max_concurrency=10_000)
        outcomes: dict[int, Any] = {}
        events: list[str] = []
        shares = [list(range(c, args.total, args.clients)) for c in range(args.clients)]
        clients = [
            threading.Thread(target=submit_all, args=(stack, headers, share, outcomes))
            for share in shares
        ]
        breaker = threading.Thread(target=break_things, args=(stack, events))
        started = time.monotonic()
        for thread in [*clients, breaker]:
            thread.start()
        for thread in [*clients, breaker]:
            thread.join()
        accepted = {n: ident for n, (kind, ident) in outcomes.items() if kind == "accepted"}
        states: dict[int, dict[str, Any] | None] = {}
        deadline = time.monotonic() + args.wait_s
        with httpx.Client(base_url=stack.url, headers=headers, timeout=30) as client:
            pending = dict(accepted)
            while pending and time.monotonic() < deadline:
                for n, ident in list(pending.items()):
                    try:
                        response = client.get(f"/v1/executions/{ident}")
                    except httpx.TransportError:
                        continue
                    if response.status_code == 404:
                        states[n] = None
                        del pending[n]
                    elif response.status_code == 200 and response.json()["state"] in FINAL:
                        states[n] = response.json()
                        del pending[n]
                time.sleep(0.5)
        by_state = Counter(body["state"] for body in states.values() if body is not None)
        errors = Counter(
            body["error"]["code"]
            for body in states.values()
            if body is not None and body["state"] == "failed"
        )
        wrong = [
            n
            for n, body in states.items()
            if body is not None
            and body["state"] == "finished"
            and body["result"]["stdout"] != f"{n}\n"
        ]
        report = {
            "submitted": args.total,
            "accepted": len(accepted),
            "refused": Counter(
                str(detail) for kind, detail in outcomes.values() if kind != "accepted"
            ),
            "final": dict(by_state),
            "failed_because": dict(errors),
            "stuck": len(pending),
            "lost": sum(1 for body in states.values() if body is None),
            "wrong": len(wrong),
            "seconds": round(time.monotonic() - started, 1),
            "faults": events,
        }
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
