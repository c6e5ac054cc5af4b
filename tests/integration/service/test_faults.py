"""The service keeps its promises at the edges, against real processes: a hostile body, busy
workers, a message lost in the broker, Redis restarted or refusing writes mid-run, and the
key's bounds. Each test counts what was submitted, accepted and ended; none may stay open.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from executor_service.jobs.dispatch import QUEUE
from tests.integration.service.stack import ServiceStack, service_stack
from tests.integration.service.test_service import FINAL, eventually, final_state, submit

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.e2e]

MiB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def chunked_post(port: int, path: str, headers: dict[str, str], total: int) -> str:
    """Stream `total` bytes of chunked body; return the status line the server answered (or
    "" if it answered nothing), stopping as soon as it answers or closes."""
    chunk = b"x" * MiB
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head += "Transfer-Encoding: chunked\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head.encode())
        sent = 0
        try:
            while sent < total:
                conn.sendall(frame)
                sent += len(chunk)
                conn.setblocking(False)
                try:
                    answer = conn.recv(4096)
                except BlockingIOError:
                    answer = None
                conn.setblocking(True)
                if answer is not None:
                    return answer.split(b"\r\n", 1)[0].decode()
        except OSError:
            pass  # the server closed the connection on us: read what it said
        conn.settimeout(10)
        try:
            return conn.recv(4096).split(b"\r\n", 1)[0].decode()
        except OSError:
            return ""


def test_hostile_bodies_leave_the_api_flat(tmp_path: Path, built_images: dict[str, str]) -> None:
    with service_stack(tmp_path, EXECUTOR_MAX_REQUEST_BYTES=str(8 * MiB)) as stack:
        assert stack.api is not None
        acme = stack.key("acme")
        before = rss_bytes(stack.api.pid)
        answers: list[str] = []

        def stranger() -> None:
            answers.append(chunked_post(stack.port, "/v1/executions", {}, 300 * MiB))

        strangers = [threading.Thread(target=stranger) for _ in range(3)]
        for thread in strangers:
            thread.start()
        for thread in strangers:
            thread.join(timeout=120)
        assert all(answer.startswith("HTTP/1.1 401") for answer in answers), answers
        keyed = chunked_post(stack.port, "/v1/executions", acme, 200 * MiB)
        assert keyed.startswith("HTTP/1.1 413"), keyed
        grown = rss_bytes(stack.api.pid) - before
        assert grown < 40 * MiB, f"the API grew by {grown / MiB:.0f} MiB"
        # Still serving.
        assert submit(stack, acme, "print(1)", wait=True).json()["result"]["stdout"] == "1\n"


def test_session_calls_never_fail_while_every_execution_slot_is_busy(
    tmp_path: Path, built_images: dict[str, str]
) -> None:
    with service_stack(tmp_path, EXECUTOR_WORKER_CONCURRENCY="2") as stack:
        other, acme = stack.key("other"), stack.key("acme")
        long = [submit(stack, other, "import time\ntime.sleep(20)").json()["id"] for _ in range(2)]
        eventually(
            lambda: all(stack.stores.executions.get(ident).state == "running" for ident in long),
            "both slots busy",
        )
        base = f"{stack.url}/v1/sessions"
        started = time.monotonic()
        created = httpx.post(base, json={}, headers=acme, timeout=30)
        assert created.status_code == 201, created.text
        session = created.json()["id"]
        put = httpx.put(f"{base}/{session}/files/a.txt", content=b"abc", headers=acme, timeout=30)
        assert put.status_code == 201, put.text
        listed = httpx.get(f"{base}/{session}/files", headers=acme, timeout=30)
        assert listed.status_code == 200, listed.text
        assert [item["path"] for item in listed.json()["files"]] == ["a.txt"]
        read = httpx.get(f"{base}/{session}/files/a.txt", headers=acme, timeout=30)
        assert read.content == b"abc"
        assert httpx.get(base, headers=acme, timeout=30).status_code == 200
        assert httpx.delete(f"{base}/{session}", headers=acme, timeout=30).status_code == 204
        # All of it while both long runs still held the slots.
        assert time.monotonic() - started < 20
        assert all(stack.stores.executions.get(ident).state == "running" for ident in long)
        for ident in long:
            httpx.post(f"{stack.url}/v1/executions/{ident}/cancel", headers=other)


def test_messages_lost_in_the_broker_are_sent_again(
    tmp_path: Path, built_images: dict[str, str]
) -> None:
    with service_stack(tmp_path, EXECUTOR_REQUEUE_AFTER_S="2") as stack:
        acme = stack.key("acme")
        worker = stack.workers[0]
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        ids = [submit(stack, acme, f"print({n})").json()["id"] for n in range(5)]
        # As a worker killed during its fetch would: the messages leave the broker, no record.
        lost = [stack.client.rpop(QUEUE) for _ in range(3)]
        assert all(lost)
        assert stack.client.llen(QUEUE) == 2
        stack.start_worker()
        bodies = [final_state(stack, acme, ident) for ident in ids]
        counts = tally(bodies)
        assert counts == {"submitted": 5, "accepted": 5, "finished": 5, "stuck": 0}, counts
        assert [body["result"]["stdout"] for body in bodies] == [f"{n}\n" for n in range(5)]
        assert all(stack.stores.executions.get(ident).claims == 1 for ident in ids)


def test_a_redis_restart_mid_run_loses_nothing(
    tmp_path: Path, built_images: dict[str, str]
) -> None:
    with service_stack(tmp_path) as stack:
        acme = stack.key("acme")
        code = "import time\nprint('start', flush=True)\ntime.sleep(4)\nprint('end')"
        ids = [submit(stack, acme, code).json()["id"] for _ in range(4)]
        eventually(
            lambda: any(stack.stores.executions.get(i).state == "running" for i in ids),
            "a run to start",
        )
        stack.redis.stop()
        down = httpx.get(f"{stack.url}/v1/executions", headers=acme, timeout=30)
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "store_unavailable"
        assert down.headers["Retry-After"]
        time.sleep(2)
        stack.redis.start()
        bodies = [final_state(stack, acme, ident) for ident in ids]
        counts = tally(bodies)
        assert counts["stuck"] == 0, counts
        assert counts["finished"] == 4, (counts, [body["error"] for body in bodies])
        assert all(body["result"]["stdout"] == "start\nend\n" for body in bodies), bodies
        # The key (written before the restart) still opens the door.
        assert submit(stack, acme, "print(2)", wait=True).status_code == 200


def test_a_refused_final_write_is_retried_and_a_lost_one_still_ends(
    tmp_path: Path, built_images: dict[str, str]
) -> None:
    env = {"EXECUTOR_LEASE_MARGIN_S": "4", "EXECUTOR_FINAL_WRITE_RETRY_S": "3"}
    with service_stack(tmp_path, **env) as stack:
        acme = stack.key("acme")
        admin = stack.client

        def run_with_writes_refused(refused_s: float) -> dict[str, Any]:
            ident = submit(stack, acme, "import time\ntime.sleep(1.5)\nprint('done')").json()["id"]
            eventually(lambda: stack.stores.executions.get(ident).state == "running", "running")
            admin.config_set("maxmemory", "1")  # every write now fails: OOM, noeviction
            try:
                refused = submit(stack, acme, "print(3)")
                assert refused.status_code == 503, refused.text
                assert refused.headers["Retry-After"]
                time.sleep(refused_s)
            finally:
                admin.config_set("maxmemory", "0")
            return final_state(stack, acme, ident)

        retried = run_with_writes_refused(2.0)
        assert retried["state"] == "finished", retried
        assert retried["result"]["stdout"] == "done\n"
        # Longer than the worker retries. Celery finds the ack refused too and gives up
        # ("unrecoverable"): the supervisor starts a new worker process, and the janitor ends
        # the orphaned run, by its silent heartbeat or by its lease, whichever comes first.
        lost = run_with_writes_refused(8.0)
        assert lost["state"] == "failed", lost
        assert lost["error"]["code"] in {"worker_lost", "lease_expired"}, lost
        after = submit(stack, acme, "print(4)", wait=True, wait_timeout_s=60)
        assert after.json()["result"]["stdout"] == "4\n", after.text


def test_the_keys_bounds_answer_429(tmp_path: Path, built_images: dict[str, str]) -> None:
    with service_stack(tmp_path) as stack:
        # One result of 150 kB output costs ~300 kB (the record and its event stream).
        few = stack.key("few", max_sessions=1, max_stored_bytes=400_000)
        base = f"{stack.url}/v1/sessions"
        first = httpx.post(base, json={}, headers=few, timeout=30)
        assert first.status_code == 201, first.text
        second = httpx.post(base, json={}, headers=few, timeout=30)
        assert second.status_code == 429, second.text
        assert "sessions" in second.json()["error"]["message"]
        httpx.delete(f"{base}/{first.json()['id']}", headers=few, timeout=30)
        third = httpx.post(base, json={}, headers=few, timeout=30)
        assert third.status_code == 201, third.text
        httpx.delete(f"{base}/{third.json()['id']}", headers=few, timeout=30)
        loud = "print('x' * 150_000)"
        assert submit(stack, few, loud, wait=True).json()["state"] == "finished"
        assert submit(stack, few, loud, wait=True).json()["state"] == "finished"
        over = submit(stack, few, "print(1)")
        assert over.status_code == 429, over.text
        assert "stored results" in over.json()["error"]["message"]


def test_symlinked_paths_are_422_and_collect_reports_per_file(
    stack: ServiceStack, docker_client: docker.DockerClient
) -> None:
    acme = stack.key("acme")
    base = f"{stack.url}/v1/sessions"
    session = httpx.post(base, json={}, headers=acme, timeout=30).json()["id"]
    try:
        made = submit(
            stack,
            acme,
            "import os\nos.symlink('/etc', 'etcdir')\nos.symlink('/etc/passwd', 'pw')",
            session_id=session,
            wait=True,
            collect=["pw", "etcdir/hostname"],
        ).json()
        assert made["state"] == "finished", made
        assert made["result"]["status"] == "ok"
        for path in ("etcdir/passwd", "pw"):
            read = httpx.get(f"{base}/{session}/files/{path}", headers=acme, timeout=30)
            assert read.status_code == 422, read.text
            assert read.json()["error"]["code"] == "unsafe_path"
        write = httpx.put(
            f"{base}/{session}/files/etcdir/evil", content=b"x", headers=acme, timeout=30
        )
        assert write.status_code == 422, write.text
        assert write.json()["error"]["code"] == "unsafe_path"
    finally:
        httpx.delete(f"{base}/{session}", headers=acme, timeout=30)


def test_readyz_turns_503_before_the_api_stops_and_when_workers_leave(
    tmp_path: Path, built_images: dict[str, str]
) -> None:
    with service_stack(tmp_path, EXECUTOR_SHUTDOWN_DRAIN_S="3") as stack:
        assert stack.api is not None
        stack.workers[0].send_signal(signal.SIGTERM)
        stack.workers[0].wait(timeout=30)
        gone = httpx.get(f"{stack.url}/readyz", timeout=5)
        assert gone.status_code == 503
        assert gone.json()["worker"] is False
        os.kill(stack.api.pid, signal.SIGTERM)
        draining = httpx.get(f"{stack.url}/readyz", timeout=5)
        assert draining.status_code == 503
        assert draining.json()["draining"] is True
        # uvicorn re-raises the SIGTERM it handled once it has shut down.
        assert stack.api.wait(timeout=30) in {0, -signal.SIGTERM}


def tally(bodies: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "submitted": len(bodies),
        "accepted": sum(1 for body in bodies if body.get("id")),
        "finished": sum(1 for body in bodies if body["state"] == "finished"),
        "stuck": sum(1 for body in bodies if body["state"] not in FINAL),
    }
