"""Submit-and-wait latency and throughput of the whole service over real HTTP.

    uv run python bench/service_latency.py         # starts its own Redis, worker and API
    uv run python bench/service_latency.py --url URL --key "$(cat .state/first-key)"

Prints the median (and p90) time of POST /v1/executions {"code": "print(1)", "wait": true} over
--calls sequential calls, then the throughput of --total executions submitted by --concurrency
clients at once, each waiting for its result; then, as the baseline, the same work done
straight through DockerRunner.run_once in this process (with --worker-concurrency threads), so the
cost of HTTP, the queue and Redis shows side by side.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

BODY = {"language": "python", "code": "print(1)", "wait": True, "wait_timeout_s": 60}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def own_service(concurrency: int, pids: dict[str, int] | None = None) -> Iterator[tuple[str, str]]:
    """Redis, one worker and the API in a temporary state directory; yields (url, key).

    `pids`, when given, receives the worker's and the API's process ids ("worker", "api").
    """
    workdir = Path(tempfile.mkdtemp(prefix="as-bench-"))
    redis_port, api_port = free_port(), free_port()
    env = {
        **os.environ,
        "EXECUTOR_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "EXECUTOR_PORT": str(api_port),
        "EXECUTOR_STATE_DIR": str(workdir),
        "EXECUTOR_WORKER_CONCURRENCY": str(concurrency),
        "EXECUTOR_LOG_LEVEL": "warning",
        "EXECUTOR_MAX_WAIT_S": "120",
    }
    redis_server = shutil.which("redis-server") or "redis-server"
    processes = [
        subprocess.Popen(
            # As the set-up runs it: the service refuses a Redis without AOF.
            [
                redis_server,
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
    ]
    time.sleep(0.5)
    log = (workdir / "service.log").open("wb")
    for name, command in (("worker", "worker"), ("api", "serve")):
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "executor_service.cli", command],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        if pids is not None:
            pids[name] = processes[-1].pid
    url = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"service not ready; see {workdir / 'service.log'}")
        yield url, (workdir / "first-key").read_text().strip()
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)
        log.close()


def one(client: httpx.Client, wrong: list[str]) -> float:
    """Seconds for one submit-and-wait; an answer other than stdout "1" is kept in `wrong`."""
    started = time.perf_counter()
    response = client.post("/v1/executions", json=BODY)
    elapsed = time.perf_counter() - started
    body = response.json()
    result = body.get("result") or {}
    if response.status_code != 200 or result.get("stdout") != "1\n":
        wrong.append(
            f"{response.status_code} {body.get('state')} {result.get('status')} "
            f"exit={result.get('exit_code')} stderr={str(result.get('stderr'))[:200]!r} "
            f"error={body.get('error')}"
        )
    return elapsed


def measure(
    url: str, key: str, calls: int, total: int, concurrency: int
) -> tuple[list[float], float]:
    """Sequential submit-and-wait samples, and seconds for `total` at `concurrency`."""
    headers = {"Authorization": f"Bearer {key}"}
    wrong: list[str] = []
    with httpx.Client(base_url=url, headers=headers, timeout=180) as client:
        one(client, [])  # warm-up: first container start, connections
        samples = [one(client, wrong) for _ in range(calls)]
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda _: one(client, wrong), range(total)))
        elapsed = time.perf_counter() - started
    print(f"wrong answers from the service: {len(wrong)} of {calls + total}")
    for line in wrong[:5]:
        print(f"  {line}")
    return samples, elapsed


def baseline(calls: int, total: int, parallel: int) -> tuple[list[float], float]:
    """The same work straight through the runner in this process: no HTTP, queue or Redis."""
    from executor_service.policy.loader import load_policies
    from executor_service.sandbox.catalogue import load_catalogue
    from executor_service.sandbox.docker_runner import create_runner
    from executor_service.sandbox.spec import Program, SandboxConfig
    from executor_service.settings import Settings

    settings = Settings()
    catalogue = load_catalogue(settings.images_dir)
    policy = load_policies(settings.policies_dir, catalogue)["default"]
    image = catalogue.image_ref(settings.image_prefix, policy.languages["python"])
    config = SandboxConfig(image=image, limits=policy.limits)
    program = Program(argv=("python", "main.py"), files={"main.py": b"print(1)\n"})
    runner = create_runner(settings)

    def run(_: object = None) -> float:
        started = time.perf_counter()
        assert runner.run_once(config, program).stdout == "1\n"
        return time.perf_counter() - started

    run()
    samples = [run() for _ in range(calls)]
    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(run, range(total)))
    elapsed = time.perf_counter() - started
    runner.close()
    return samples, elapsed


def report(rows: list[tuple[str, list[float], float]], total: int) -> None:
    print(f"{'path':58} {'median ms':>9} {'p90 ms':>7} {'exec/s':>7}")
    for name, samples, elapsed in rows:
        ordered = sorted(samples)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        median = statistics.median(samples)
        print(f"{name:58} {median * 1000:9.0f} {p90 * 1000:7.0f} {total / elapsed:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running service (default: start one)")
    parser.add_argument("--key", help="its API key")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--total", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--worker-concurrency", type=int, default=4)
    args = parser.parse_args()
    if args.url:
        service = measure(args.url, args.key, args.calls, args.total, args.concurrency)
    else:
        with own_service(args.worker_concurrency) as (url, key):
            service = measure(url, key, args.calls, args.total, args.concurrency)
    direct = baseline(args.calls, args.total, args.worker_concurrency)
    print(
        f"print(1): median of {args.calls} sequential calls; throughput of {args.total} "
        f"executions ({args.concurrency} clients to the service, "
        f"{args.worker_concurrency} threads for the baseline)"
    )
    report(
        [
            ("service: POST /v1/executions wait=true over HTTP", *service),
            ("baseline: DockerRunner.run_once in-process", *direct),
        ],
        args.total,
    )


if __name__ == "__main__":
    main()
