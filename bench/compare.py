"""Side by side, in one process and the same minutes: print(1) through AutoGen, docker-py, our
runner and our service: latency, throughput and CPU per run, with ratios to AutoGen and the floor.

    uv run --group bench python bench/compare.py [--rounds 30] [--throughput-total 24]
        [--clients 1 4 8] [--seed N] [--json PATH]

Every run is Python's `print(1)`, checked to answer "1". The rows:

  floor    `exec_run` of python -c 'print(1)' (as the code's uid) in one already running container
           made with our hardening (hardening.container_options): the engine's cost of one exec.
  raw      docker-py with the same hardening but the program as the container's command: create,
           attach, start, read to the end, wait, remove, all timed. Our log driver ("none") stays,
           so the output is read by attaching before the start, as `docker run` does, not by
           `logs`; the JSON also holds each run's time until the exit (before the removal).
  autogen  AutoGen 0.7.5's DockerCommandLineCodeExecutor through its async API, as AutoGen users
           drive it (start, execute_code_blocks with a CodeBlock, stop): one executor, so one
           long-lived container reused by every call, as AutoGen does by design.
           DERIVED IMAGE: it wants python:3-slim, which cannot be pulled here, so the bench builds
           bench/autogen.Dockerfile (our python sandbox image with USER root, as python:3-slim
           runs) and tags it agent-sandbox/bench-autogen. The image is left for the next run.
  runner   our runner in this process: create_runner(Settings()).run_once(config, program) with
           the default policy's limits; the row names the class create_runner returned.
  pooled   (when the tree has it) the runner a worker builds, create_worker_runner(Settings()):
           the warm pool in front of the Docker runner, in this process, with its pool_size.
  fresh    our service, started here as real processes (bench/service_latency.own_service: its own
           Redis, one worker, the API): POST /v1/executions {"language": "python",
           "code": "print(1)", "wait": true}, a fresh hardened sandbox over HTTP and Celery.
  session  the same with the session_id of a session created once beforehand.

Latency: one warm-up round (not counted), then --rounds rounds, each running every row once in an
order shuffled by a seeded RNG (the seed is printed). Throughput: --throughput-total runs at each
of --clients concurrent clients for raw (container churn), fresh, session (a session per client)
and autogen (an executor per client). CPU per run, per throughput phase: the API process, the
worker's process tree, Redis, dockerd, containerd, this process, and the whole machine (which also
holds containerd's shims and runc, and anything else running). The load average is printed before
and after. Everything started here (containers, processes, temporary directories) is removed at
the end, on Ctrl-C and on SIGTERM too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import docker
import docker.errors
import httpx
import requests.exceptions
from docker.models.containers import Container

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import proc_cpu  # noqa: E402
from bench.service_latency import BODY, own_service  # noqa: E402
from executor_service.errors import ServiceError  # noqa: E402
from executor_service.jobs.plan import Planner  # noqa: E402
from executor_service.sandbox import docker_runner  # noqa: E402
from executor_service.sandbox.docker_runner import create_runner  # noqa: E402
from executor_service.sandbox.hardening import (  # noqa: E402
    WORKSPACE,
    container_options,
    draw_code_uid,
    user,
)
from executor_service.sandbox.spec import Program, SandboxConfig  # noqa: E402
from executor_service.settings import Settings  # noqa: E402

try:
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock
    from autogen_ext.code_executors.docker import DockerCommandLineCodeExecutor
except ImportError as exc:  # pragma: no cover - a hint, not logic
    raise SystemExit("AutoGen's executor is missing: uv run --group bench ...") from exc

ARGV = ("python", "-c", "print(1)")
CODE = "print(1)"
BENCH_DIR = Path(__file__).resolve().parent
AUTOGEN_IMAGE = "agent-sandbox/bench-autogen"
AUTOGEN_DOCKERFILE = "autogen.Dockerfile"
BENCH_LABEL = "agent-sandbox.bench"
RAW_LIFETIME_S = 600.0  # deadline label: others' reapers may remove it after this
FLOOR_LIFETIME_S = 4 * 3600.0
# The key `own_service` makes may hold this many sessions at once (ApiKey.max_sessions).
MAX_SESSIONS = 8
THROUGHPUT_ROWS = ("raw", "fresh", "session", "autogen")
T = TypeVar("T")


class BenchFailure(Exception):
    """A run that did not answer "1" (or whose service call failed): counted, never timed."""


# What one failed run may raise; anything else stops the bench (and cleans up).
RUN_ERRORS = (
    BenchFailure,
    ServiceError,
    docker.errors.DockerException,
    requests.exceptions.RequestException,
    httpx.HTTPError,
)


def check(output: str) -> None:
    if output.strip() != "1":
        raise BenchFailure(f"answered {output[:200]!r}")


@dataclasses.dataclass(frozen=True)
class Row:
    key: str
    label: str
    call: Callable[[int], str]  # a client's index -> the run's output


# -- rows without any service around them ----------------------------------------------------------


class Engine:
    """The docker-py rows: hardened container churn, and exec in one hardened container."""

    def __init__(self, client: docker.DockerClient, config: SandboxConfig) -> None:
        self._client = client
        self.tag = f"compare-{os.getpid()}"
        self._config = dataclasses.replace(config, labels={**config.labels, BENCH_LABEL: self.tag})
        self._floor_uid = draw_code_uid()
        self._floor: Container | None = None
        self.until_exit: list[float] = []  # raw runs: seconds until the exit, before removal

    def _options(self, lifetime_s: float, code_uid: int) -> dict[str, Any]:
        return container_options(
            self._config,
            deadline=time.time() + lifetime_s,
            code_uid=code_uid,
            instance=f"bench-{os.getpid()}",
        )

    def raw(self, _client: int) -> str:
        started = time.perf_counter()
        code_uid = draw_code_uid()
        options = self._options(RAW_LIFETIME_S, code_uid)
        options.update(command=list(ARGV), user=user(code_uid))
        container = self._client.containers.create(**options)
        try:
            stream = container.attach(stdout=True, stderr=True, stream=True)
            container.start()
            output = b"".join(stream)
            status = container.wait(timeout=60)
            self.until_exit.append(time.perf_counter() - started)
        finally:
            container.remove(v=True, force=True)
        if status.get("StatusCode") != 0:
            raise BenchFailure(f"raw container exited {status}")
        return output.decode()

    def start_floor(self) -> None:
        self._floor = self._client.containers.create(
            **self._options(FLOOR_LIFETIME_S, self._floor_uid)
        )
        self._floor.start()

    def floor(self, _client: int) -> str:
        assert self._floor is not None, "start_floor first"
        result = self._floor.exec_run(list(ARGV), user=user(self._floor_uid), workdir=WORKSPACE)
        if result.exit_code != 0 or not isinstance(result.output, bytes):
            raise BenchFailure(f"floor exec exited {result.exit_code}")
        return result.output.decode()

    def remove_all(self) -> None:
        """Every container of this bench run (the floor; raw ones an interrupt left behind)."""
        with contextlib.suppress(docker.errors.DockerException):
            for container in self._client.containers.list(
                all=True, filters={"label": f"{BENCH_LABEL}={self.tag}"}
            ):
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(v=True, force=True)


class LoopThread:
    """An event loop on a thread of its own, so AutoGen's async API serves the threaded clients.

    Its default executor (asyncio.to_thread, which AutoGen's exec_run goes through) gets enough
    threads for every client: asyncio's own default here (cpus + 4) would cap 8 clients at 6.
    """

    def __init__(self, threads: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(ThreadPoolExecutor(threads, thread_name_prefix="autogen"))
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 300) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        if not self._thread.is_alive():
            self.loop.close()


class AutoGen:
    """AutoGen's DockerCommandLineCodeExecutor: executor i serves client i."""

    def __init__(
        self, client: docker.DockerClient, loop: LoopThread, image: str, workdir: Path
    ) -> None:
        self._client = client
        self._loop = loop
        self._image = image
        self._workdir = workdir
        self.prefix = f"as-bench-autogen-{os.getpid()}"
        self._executors: list[DockerCommandLineCodeExecutor] = []

    async def _start(self, index: int) -> DockerCommandLineCodeExecutor:
        executor = DockerCommandLineCodeExecutor(
            image=self._image,
            container_name=f"{self.prefix}-{index}",
            work_dir=self._workdir / f"executor-{index}",
        )
        await executor.start()
        return executor

    async def _start_many(self, indexes: range) -> list[DockerCommandLineCodeExecutor]:
        return list(await asyncio.gather(*(self._start(index) for index in indexes)))

    def ensure(self, count: int) -> None:
        """Start executors up to `count` and run each once (its first exec is not measured)."""
        new = range(len(self._executors), count)
        self._executors.extend(self._loop.run(self._start_many(new)))
        for index in new:
            check(self.call(index))

    def call(self, index: int) -> str:
        block = CodeBlock(code=CODE, language="python")
        coroutine = self._executors[index].execute_code_blocks([block], CancellationToken())
        result = self._loop.run(coroutine)
        if result.exit_code != 0:
            raise BenchFailure(f"AutoGen run exited {result.exit_code}: {result.output[:200]!r}")
        return result.output

    async def _stop_all(self) -> None:
        await asyncio.gather(*(executor.stop() for executor in self._executors))

    def stop(self) -> None:
        """AutoGen's own stop (docker stop: its shell ignores SIGTERM, so ~10 s, in parallel)."""
        self._loop.run(self._stop_all())
        self._executors.clear()

    def remove_all(self) -> None:
        """Containers an interrupted run left (a clean run's stop already removed them)."""
        with contextlib.suppress(docker.errors.DockerException):
            for container in self._client.containers.list(all=True, filters={"name": self.prefix}):
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(v=True, force=True)


def build_autogen_image(client: docker.DockerClient, base_image: str) -> str:
    """The derived image AutoGen's executor runs (python:3-slim cannot be pulled here)."""
    client.images.build(
        path=str(BENCH_DIR),
        dockerfile=AUTOGEN_DOCKERFILE,
        tag=AUTOGEN_IMAGE,
        buildargs={"BASE_IMAGE": base_image},
        pull=False,
        rm=True,
    )
    return AUTOGEN_IMAGE


# -- our service -----------------------------------------------------------------------------------


class Service:
    """HTTP calls to our own service: fresh sandboxes, and sessions (session i serves client i)."""

    def __init__(self, url: str, key: str) -> None:
        self._http = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=180,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )
        self.sessions: list[str] = []

    def _submit(self, body: dict[str, Any]) -> str:
        response = self._http.post("/v1/executions", json=body)
        try:
            payload = response.json()
        except ValueError as exc:
            raise BenchFailure(f"HTTP {response.status_code}: {response.text[:200]!r}") from exc
        result = payload.get("result") or {}
        if response.status_code != 200 or result.get("status") != "ok":
            raise BenchFailure(
                f"HTTP {response.status_code} state={payload.get('state')} "
                f"status={result.get('status')} exit={result.get('exit_code')} "
                f"message={result.get('message')!r} stderr={str(result.get('stderr'))[:300]!r} "
                f"error={payload.get('error')}"
            )
        return str(result.get("stdout"))

    def fresh(self, _client: int) -> str:
        return self._submit(BODY)

    def session(self, index: int) -> str:
        return self._submit({**BODY, "session_id": self.sessions[index]})

    def ensure_sessions(self, count: int) -> None:
        """Create sessions up to `count` and run each once (its first run is not measured)."""
        while len(self.sessions) < count:
            response = self._http.post("/v1/sessions", json={"language": "python"})
            if response.status_code != 201:
                raise BenchFailure(f"session not created: {response.status_code} {response.text}")
            self.sessions.append(str(response.json()["id"]))
            check(self.session(len(self.sessions) - 1))

    def close(self) -> None:
        for session_id in self.sessions:
            with contextlib.suppress(httpx.HTTPError):
                self._http.delete(f"/v1/sessions/{session_id}")
        self._http.close()


def service_processes() -> dict[str, int]:
    """The API, worker and Redis processes own_service started, found among our children."""
    found: dict[str, int] = {}
    for pid in proc_cpu.children_of(os.getpid()):
        argv = proc_cpu.cmdline(pid)
        if "executor_service.cli" in argv:
            found["API" if "serve" in argv else "worker (tree)"] = pid
        elif argv and "redis-server" in argv[0]:
            found["redis"] = pid
    missing = {"API", "worker (tree)", "redis"} - found.keys()
    if missing:
        raise RuntimeError(f"service processes not found among this process's children: {missing}")
    return found


# -- measuring -------------------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks (NaN for no samples)."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "median_s": statistics.median(samples) if samples else math.nan,
        "p90_s": percentile(samples, 0.9),
        "p99_s": percentile(samples, 0.99),
        "min_s": min(samples) if samples else math.nan,
        "max_s": max(samples) if samples else math.nan,
    }


@dataclasses.dataclass
class Latency:
    samples: dict[str, list[float]]
    failures: dict[str, list[str]]
    orders: list[list[str]]


def latency_rounds(rows: Sequence[Row], rounds: int, rng: random.Random, engine: Engine) -> Latency:
    """One warm-up round, then `rounds` rounds, every row once per round in a shuffled order."""
    result = Latency({row.key: [] for row in rows}, {row.key: [] for row in rows}, [])
    for number in range(rounds + 1):
        order = list(rows)
        rng.shuffle(order)
        if number:
            result.orders.append([row.key for row in order])
        for row in order:
            started = time.perf_counter()
            try:
                check(row.call(0))
            except RUN_ERRORS as exc:
                if number:
                    result.failures[row.key].append(f"{type(exc).__name__}: {exc}")
                continue
            if number:
                result.samples[row.key].append(time.perf_counter() - started)
        if not number:
            engine.until_exit.clear()  # the warm-up's raw run is not counted either
        print(f"  round {number}/{rounds} done", file=sys.stderr, flush=True)
    return result


def throughput_phase(
    row: Row, clients: int, total: int, settle_s: float, groups: proc_cpu.Groups
) -> dict[str, Any]:
    """`total` runs shared by `clients` threads; CPU per run of every group over the phase."""
    tickets = itertools.count()
    failures: list[str] = []
    stop = threading.Event()  # an interrupt must not wait for every remaining ticket

    def client(index: int) -> None:
        while not stop.is_set() and next(tickets) < total:
            try:
                check(row.call(index))
            except RUN_ERRORS as exc:
                failures.append(f"{type(exc).__name__}: {exc}")

    before = groups.snapshot()
    started = time.perf_counter()
    pool = ThreadPoolExecutor(clients, thread_name_prefix=f"client-{row.key}")
    try:
        for future in [pool.submit(client, index) for index in range(clients)]:
            future.result()
    finally:
        stop.set()
        pool.shutdown(wait=True)
    elapsed = time.perf_counter() - started
    time.sleep(settle_s)  # work a run leaves behind (a background removal) counts to its phase
    after = groups.snapshot()
    return {
        "row": row.key,
        "clients": clients,
        "runs": total,
        "failures": failures,
        "elapsed_s": elapsed,
        "runs_per_s": (total - len(failures)) / elapsed,
        "cpu_ms_per_run": proc_cpu.per_run(before, after, total),
    }


# -- report ----------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f}"


def ratio(value: float, base: float) -> str:
    return "-" if math.isnan(value) or math.isnan(base) or base == 0 else f"{value / base:.2f}"


def report(results: dict[str, Any]) -> None:
    rows = results["rows"]
    latency = results["latency"]
    autogen_p50 = latency["autogen"]["median_s"]
    floor_p50 = latency["floor"]["median_s"]
    print(f"\nlatency of print(1), {results['args']['rounds']} rounds, ms")
    print(
        f"{'row':66} {'n':>3} {'fail':>4} {'median':>7} {'p90':>6} {'p99':>6} "
        f"{'/AutoGen':>8} {'/floor':>6}"
    )
    for key, label in rows.items():
        stats = latency[key]
        print(
            f"{label[:66]:66} {stats['n']:3d} {stats['failures']:4d} {ms(stats['median_s']):>7} "
            f"{ms(stats['p90_s']):>6} {ms(stats['p99_s']):>6} "
            f"{ratio(stats['median_s'], autogen_p50):>8} {ratio(stats['median_s'], floor_p50):>6}"
        )
    until_exit = results["raw_until_exit"]
    print(
        f"(raw, until the exit and before the removal: median {ms(until_exit['median_s'])} ms; "
        "our runner and the service remove single-use containers in the background)"
    )
    if results["pooled_runner"] is not None:
        print(f"(in-process pool at the end: {results['pooled_runner']['state']})")
    phases = results["throughput"]
    levels = results["args"]["clients"]
    print(f"\nthroughput, runs/s ({results['args']['throughput_total']} runs per cell)")
    print(f"{'row':66} " + " ".join(f"{f'{n} cl.':>7}" for n in levels) + f" {'fail':>4}")
    for key in THROUGHPUT_ROWS:
        cells = {phase["clients"]: phase for phase in phases if phase["row"] == key}
        failed = sum(len(phase["failures"]) for phase in cells.values())
        values = " ".join(f"{cells[n]['runs_per_s']:7.2f}" for n in levels)
        print(f"{rows[key][:66]:66} {values} {failed:4d}")
    groups = list(phases[0]["cpu_ms_per_run"]) if phases else []
    print("\nCPU per run, ms, by process (per throughput phase; machine = every busy CPU)")
    short = {"worker (tree)": "worker", proc_cpu.MACHINE: "machine"}
    print(f"{'row':10} {'cl.':>3} " + " ".join(f"{short.get(g, g)[:10]:>10}" for g in groups))
    for phase in sorted(phases, key=lambda p: (THROUGHPUT_ROWS.index(p["row"]), p["clients"])):
        cpu = phase["cpu_ms_per_run"]
        print(
            f"{phase['row']:10} {phase['clients']:3d} "
            + " ".join(f"{cpu[group]:10.1f}" for group in groups)
        )
    failures = [
        f"{key}: {failure}"
        for key, items in results["latency_failures"].items()
        for failure in items
    ] + [
        f"{p['row']} at {p['clients']} clients: {failure}"
        for p in phases
        for failure in p["failures"]
    ]
    if failures:
        print(f"\nfailed runs: {len(failures)} (not timed); the first ones:")
        for line in failures[:5]:
            print(f"  {line[:300]}")
    print("\ntargets (measured, not judged here)")
    for line in results["targets"]:
        print(f"  {line}")
    print(
        f"\nload average (1, 5, 15 min): at start {fmt_load(results['loadavg_start'])}; "
        f"before measuring {fmt_load(results['loadavg_before'])}; "
        f"after {fmt_load(results['loadavg_after'])}"
    )


def finite(value: Any) -> Any:
    """The results with NaN (a row with no sample) as null, which JSON can hold."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def fmt_load(load: Sequence[float]) -> str:
    return " ".join(f"{value:.2f}" for value in load)


def targets(latency: dict[str, dict[str, Any]], phases: list[dict[str, Any]]) -> list[str]:
    def p50(key: str) -> float:
        return float(latency[key]["median_s"])

    def rate(key: str, clients: int) -> float:
        for phase in phases:
            if phase["row"] == key and phase["clients"] == clients:
                return float(phase["runs_per_s"])
        return math.nan

    top = max((phase["clients"] for phase in phases), default=0)
    lines = [
        f"fresh over HTTP+Celery p50 {ms(p50('fresh'))} ms vs AutoGen per-call p50 "
        f"{ms(p50('autogen'))} ms: ratio {ratio(p50('fresh'), p50('autogen'))}",
        f"session p50 {ms(p50('session'))} ms vs 1.2 x floor p50 = {ms(1.2 * p50('floor'))} ms: "
        f"session/floor {ratio(p50('session'), p50('floor'))} (target <= 1.2)",
        f"throughput at {top} clients: fresh {rate('fresh', top):.2f}/s vs raw docker-py churn "
        f"{rate('raw', top):.2f}/s: ratio {ratio(rate('fresh', top), rate('raw', top))}",
    ]
    for phase in sorted(phases, key=lambda p: (p["row"], p["clients"])):
        if phase["row"] in {"fresh", "session"}:
            cpu = phase["cpu_ms_per_run"]
            lines.append(
                f"API + worker CPU per run, {phase['row']} at {phase['clients']} clients: "
                f"{cpu['API'] + cpu['worker (tree)']:.1f} ms "
                f"(API {cpu['API']:.1f}, worker {cpu['worker (tree)']:.1f})"
            )
    return lines


# -- the run ---------------------------------------------------------------------------------------


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def remove_dirs(paths: list[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def git_commit() -> str:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    return "unknown"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=30, help="counted latency rounds")
    parser.add_argument("--throughput-total", type=int, default=24, help="runs per cell")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seed", type=int, help="shuffle seed (default: from the clock)")
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        help="the service worker's slots (default: the service's own setting)",
    )
    parser.add_argument("--settle-s", type=float, default=1.0, help="pause before a phase's CPU")
    parser.add_argument("--json", type=Path, help="write every sample and figure here")
    args = parser.parse_args(argv)
    if max(args.clients) > MAX_SESSIONS:
        parser.error(f"at most {MAX_SESSIONS} clients: the service key holds that many sessions")
    return args


def measure(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, Any]:
    loadavg_start = os.getloadavg()
    print(f"load average at start: {fmt_load(loadavg_start)}", flush=True)
    settings = Settings()
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    print(f"seed {seed}", flush=True)
    planner = Planner.load(settings)
    policy = planner.policies["default"]
    # As the worker's planner builds it: on the python image a pool member waits with a ready
    # interpreter (ready_python), which the pooled row must measure.
    config = planner.sandbox_config(policy, "python", policy.limits, {})
    image = config.image
    program = Program(argv=("python", "main.py"), files={"main.py": f"{CODE}\n".encode()})
    worker_concurrency = args.worker_concurrency or settings.worker_concurrency

    workdir = Path(tempfile.mkdtemp(prefix="as-compare-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    client = (
        docker.DockerClient(base_url=settings.docker_url, max_pool_size=64)
        if settings.docker_url
        else docker.from_env(max_pool_size=64)
    )
    stack.callback(client.close)

    print(f"building {AUTOGEN_IMAGE} (FROM {image}, USER root) for AutoGen", flush=True)
    autogen_image = build_autogen_image(client, image)

    # Started first, stopped last: its state directory goes once its processes have ended.
    state_dirs: list[Path] = []
    stack.callback(remove_dirs, state_dirs)
    print(
        f"starting Redis, a worker (concurrency {worker_concurrency}, pool_size setting "
        f"{getattr(settings, 'pool_size', 'absent')}) and the API",
        flush=True,
    )
    url, key = stack.enter_context(own_service(worker_concurrency))
    processes = service_processes()
    state_dir = proc_cpu.environ(processes["API"]).get("EXECUTOR_STATE_DIR")
    if state_dir:
        state_dirs.append(Path(state_dir))
    service = Service(url, key)
    stack.callback(service.close)

    engine = Engine(client, config)
    stack.callback(engine.remove_all)
    engine.start_floor()

    # The in-process runners are an instance of their own: the service's janitor would otherwise
    # reap the in-process pool's members (their owner has no heartbeat in its Redis).
    inprocess = settings.model_copy(update={"instance": f"bench-{os.getpid()}"})
    runner = create_runner(inprocess)
    stack.callback(runner.close)
    # The warm pool (being added as this is written): measured too when it exists, as the worker
    # builds it; looked up by name so the bench runs on a tree with or without it.
    pooled_factory = getattr(docker_runner, "create_worker_runner", None)
    pooled = None
    if pooled_factory is not None and getattr(settings, "pool_size", 0) > 0:
        pooled = pooled_factory(inprocess, owner=f"bench-compare-{os.getpid()}")
        stack.callback(getattr(pooled, "close", lambda: None))

    loop = LoopThread(threads=max(args.clients) * 2)
    stack.callback(loop.close)
    autogen = AutoGen(client, loop, autogen_image, workdir / "autogen")
    stack.callback(autogen.remove_all)

    def run_runner(_client: int) -> str:
        return runner.run_once(config, program).stdout

    runner_name = type(runner).__name__
    rows = [
        Row("floor", "floor: exec_run in one running hardened container", engine.floor),
        Row("raw", "raw docker-py, same hardening: create+attach+start+wait+rm", engine.raw),
        Row(
            "autogen",
            "AutoGen 0.7.5 DockerCommandLineCodeExecutor (derived root image)",
            autogen.call,
        ),
        Row("runner", f"our runner: create_runner() -> {runner_name}.run_once", run_runner),
        Row("fresh", "our service fresh: POST /v1/executions wait=true", service.fresh),
        Row("session", "our service session: POST /v1/executions session_id", service.session),
    ]
    if pooled is not None:
        pooled_name = f"{type(pooled).__name__}.run_once (pool_size {settings.pool_size})"

        def run_pooled(_client: int) -> str:
            return str(pooled.run_once(config, program).stdout)

        rows.insert(4, Row("pooled", f"our worker's runner: {pooled_name}", run_pooled))
    autogen.ensure(1)
    service.ensure_sessions(1)

    loadavg_before = os.getloadavg()
    print(f"load average before measuring: {fmt_load(loadavg_before)}", flush=True)
    print(f"latency: 1 warm-up round + {args.rounds} rounds of {len(rows)} rows", flush=True)
    latency = latency_rounds(rows, args.rounds, rng, engine)
    raw_until_exit = list(engine.until_exit)

    groups = proc_cpu.Groups(
        trees={
            "API": processes["API"],
            "worker (tree)": processes["worker (tree)"],
            "redis": processes["redis"],
        },
        single={"bench": os.getpid()},
        names={"dockerd": "dockerd", "containerd": "containerd"},
    )
    by_key = {row.key: row for row in rows}
    phases: list[dict[str, Any]] = []
    for clients in args.clients:
        autogen.ensure(clients)
        service.ensure_sessions(clients)
        order = [by_key[key] for key in THROUGHPUT_ROWS]
        rng.shuffle(order)
        for row in order:
            print(f"throughput: {row.key} at {clients} clients", file=sys.stderr, flush=True)
            phases.append(
                throughput_phase(row, clients, args.throughput_total, args.settle_s, groups)
            )
    loadavg_after = os.getloadavg()
    print(f"load average after measuring: {fmt_load(loadavg_after)}", flush=True)
    autogen.stop()

    stats = {
        row.key: {
            "label": row.label,
            "n": len(latency.samples[row.key]),
            "failures": len(latency.failures[row.key]),
            **summary(latency.samples[row.key]),
        }
        for row in rows
    }
    return {
        "seed": seed,
        "args": {
            "rounds": args.rounds,
            "throughput_total": args.throughput_total,
            "clients": args.clients,
            "settle_s": args.settle_s,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "docker": client.version().get("Version"),
            "autogen_ext": metadata.version("autogen-ext"),
            "docker_py": metadata.version("docker"),
            "commit": git_commit(),
        },
        "images": {
            "sandbox": image,
            "autogen_derived": f"{autogen_image} (FROM {image}, USER root)",
        },
        "runner_class": runner_name,
        "pooled_runner": None
        if pooled is None
        else {"class": type(pooled).__name__, "state": repr(pooled.pool_state())},
        "service": {
            "worker_concurrency": worker_concurrency,
            "pool_size_setting": getattr(settings, "pool_size", None),
            "pids": processes,
            "state_dir": state_dirs,
        },
        "autogen_workdir": str(workdir / "autogen"),
        "rows": {row.key: row.label for row in rows},
        "latency": stats,
        "latency_samples_s": latency.samples,
        "latency_failures": latency.failures,
        "round_orders": latency.orders,
        "raw_until_exit": {"samples_s": raw_until_exit, **summary(raw_until_exit)},
        "throughput": phases,
        "targets": targets(stats, phases),
        "loadavg_start": loadavg_start,
        "loadavg_before": loadavg_before,
        "loadavg_after": loadavg_after,
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # SIGINT too: a shell starts background jobs with it ignored, and the clean-up must still run.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    try:
        with contextlib.ExitStack() as stack:
            results = measure(args, stack)
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc}); everything started here is removed", file=sys.stderr)
        raise SystemExit(130) from None
    report(results)
    if args.json:
        args.json.write_text(json.dumps(finite(results), indent=2, default=str) + "\n")
        print(f"\nJSON written to {args.json}")


if __name__ == "__main__":
    main()
