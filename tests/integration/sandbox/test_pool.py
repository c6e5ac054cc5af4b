"""The warm pool on the real engine: what it guarantees, not how fast it is (see bench/).

A member serves one run and is replaced; a dead or expired member is never handed out; a request
whose limits differ from the pool's gets a container with its own limits; members go with their
worker, whether it stops or is killed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import docker
import pytest

from executor_service.sandbox.docker_runner import create_runner
from executor_service.sandbox.pool import PooledRunner
from executor_service.sandbox.runner import POOL_LABEL, Sandbox
from executor_service.sandbox.spec import RunStatus, SandboxConfig
from executor_service.settings import Settings
from tests.conftest import SandboxFactory

pytestmark = pytest.mark.docker

OWNER = "pool-test:1"


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def members(client: docker.DockerClient, owner: str = OWNER) -> list[str]:
    found = client.api.containers(all=True, filters={"label": f"{POOL_LABEL}={owner}"})
    return [item["Id"] for item in found]


@pytest.fixture
def pool(settings: Settings, docker_client: docker.DockerClient) -> Iterator[PooledRunner]:
    made = PooledRunner(create_runner(settings), owner=OWNER, size=1, idle_s=60.0, max_keys=2)
    yield made
    made.close()
    assert members(docker_client) == []  # stopping takes every idle member with it


def warmed(pool: PooledRunner, config: SandboxConfig) -> None:
    pool.warm([config])
    wait_for(lambda: pool.pool_state().idle == 1)


def test_a_member_serves_one_run_and_is_replaced(
    pool: PooledRunner, sandboxes: SandboxFactory, docker_client: docker.DockerClient
) -> None:
    config = sandboxes.config()
    warmed(pool, config)
    first = pool.prepare(config)
    assert first.launched  # the python image waits with a ready interpreter
    assert first.config is config  # the caller's labels describe the run
    result = pool.run(first, sandboxes.program("print(6 * 7)"))
    assert (result.status, result.stdout) == (RunStatus.OK, "42\n")
    assert result.memory_peak_bytes
    assert result.cpu_time_s is not None
    wait_for(lambda: first.id not in members(docker_client))  # destroyed after its one run
    wait_for(lambda: pool.pool_state().idle == 1)  # and replaced
    second = pool.prepare(config)
    assert second.id != first.id
    assert pool.pool_state().hits == 2
    pool.destroy(second.id)


def test_a_member_that_answered_its_job_stops_by_itself_and_is_not_killed(
    pool: PooledRunner, sandboxes: SandboxFactory, docker_client: docker.DockerClient
) -> None:
    """Once the run is read (output, cgroup numbers, files), letting go of the stream ends the
    launcher and with it the container, which the engine removes: no kill for it to carry out."""
    config = sandboxes.config()
    warmed(pool, config)
    since = time.time() - 1
    sandbox = pool.prepare(config)
    program = sandboxes.program("open('out.txt', 'w').write('kept')\nprint('done')")
    result = pool.run(sandbox, replace(program, collect=("out.txt",)))
    assert (result.status, result.stdout) == (RunStatus.OK, "done\n")
    assert [(f.path, f.content) for f in result.files] == [("out.txt", b"kept")]
    assert result.memory_peak_bytes  # read while the container was still there
    wait_for(lambda: sandbox.id not in members(docker_client))
    events = docker_client.api.events(
        since=since, until=time.time(), filters={"container": sandbox.id}, decode=True
    )
    actions = [event["Action"].split(":")[0] for event in events]
    assert "die" in actions
    assert "kill" not in actions
    assert "destroy" in actions


def test_code_that_kills_its_launcher_only_ends_its_own_run(
    pool: PooledRunner, sandboxes: SandboxFactory, docker_client: docker.DockerClient
) -> None:
    """Same uid, so it can: then no trailer comes, and the container's own exit code stands."""
    config = sandboxes.config()
    warmed(pool, config)
    sandbox = pool.prepare(config)
    code = "import os, signal\nprint('bye', flush=True)\nos.kill(os.getppid(), signal.SIGKILL)\n"
    result = pool.run(sandbox, sandboxes.program(code))
    assert (result.status, result.exit_code) == (RunStatus.ERROR, 137)
    assert result.stdout == "bye\n"
    wait_for(lambda: sandbox.id not in members(docker_client))


def test_code_in_a_ready_interpreter_runs_as_python_main_py_would(
    pool: PooledRunner, sandboxes: SandboxFactory
) -> None:
    """The launcher froze its objects before the job and runs it in its own __main__; the code
    still gets that module emptied of the launcher's names (so what it defines pickles), argv,
    __file__ and path as python sets them, and a traceback of its own frames when it raises."""
    config = sandboxes.config()
    warmed(pool, config)
    code = (
        "import pickle, sys\n"
        "class Point:\n    pass\n"
        "assert type(pickle.loads(pickle.dumps(Point()))) is Point\n"
        "print(__name__, __file__, sys.argv, sys.path[0], "
        "sorted(k for k in globals() if k[0] != '_'))\n"
        "def inner():\n    return 1 / 0\n"
        "inner()\n"
    )
    result = pool.run(pool.prepare(config), sandboxes.program(code))
    assert result.status == RunStatus.ERROR
    assert result.exit_code == 1
    assert result.stdout == (
        "__main__ /workspace/main.py ['main.py'] /workspace ['Point', 'pickle', 'sys']\n"
    )
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert 'File "/workspace/main.py", line 7, in inner' in result.stderr
    assert result.stderr.endswith("ZeroDivisionError: division by zero\n")
    assert "<string>" not in result.stderr  # no frame of the launcher's


def test_a_dead_member_is_never_handed_out(
    pool: PooledRunner, sandboxes: SandboxFactory, docker_client: docker.DockerClient
) -> None:
    config = sandboxes.config()
    warmed(pool, config)
    [dead] = members(docker_client)
    docker_client.api.kill(dead)
    sandbox = pool.prepare(config)
    assert sandbox.id != dead
    assert pool.run(sandbox, sandboxes.program("print('fine')")).stdout == "fine\n"
    assert pool.pool_state().discarded == 1
    wait_for(lambda: dead not in members(docker_client))


def test_an_expired_member_is_never_handed_out(
    settings: Settings, sandboxes: SandboxFactory, docker_client: docker.DockerClient
) -> None:
    short = PooledRunner(create_runner(settings), owner=OWNER, size=1, idle_s=1.0, max_keys=1)
    try:
        config = sandboxes.config()
        warmed(short, config)
        [old] = members(docker_client)
        time.sleep(1.2)
        sandbox = short.prepare(config)
        assert sandbox.id != old
        assert short.run(sandbox, sandboxes.program("print(1)")).stdout == "1\n"
        wait_for(lambda: old not in members(docker_client))
    finally:
        short.close()
    assert members(docker_client) == []


def test_an_idle_member_is_replaced_when_it_expires_without_a_request(
    settings: Settings, sandboxes: SandboxFactory, docker_client: docker.DockerClient
) -> None:
    """Nothing asks the pool anything: its threads wake for the expiry by themselves."""
    short = PooledRunner(create_runner(settings), owner=OWNER, size=1, idle_s=1.0, max_keys=1)
    try:
        short.warm([sandboxes.config()])  # a pinned key: kept warm though nobody asks
        wait_for(lambda: len(members(docker_client)) == 1)
        [old] = members(docker_client)
        wait_for(lambda: old not in members(docker_client), timeout_s=10)
        wait_for(lambda: short.pool_state().idle == 1)
        assert short.pool_state().discarded >= 1
        assert short.pool_state().hits == short.pool_state().misses == 0
    finally:
        short.close()
    assert members(docker_client) == []


def test_closing_wakes_every_refill_thread_however_far_its_next_expiry(
    settings: Settings, sandboxes: SandboxFactory, docker_client: docker.DockerClient
) -> None:
    """The refill threads sleep until an expiry (here ten minutes away): a worker that stops
    must not wait for it."""
    slow = PooledRunner(create_runner(settings), owner=OWNER, size=1, idle_s=600.0, max_keys=1)
    warmed(slow, sandboxes.config())
    closing = threading.Thread(target=slow.close)
    closing.start()
    closing.join(timeout=60)  # a bound for a stuck close, far under the expiry it would wait for
    assert not closing.is_alive()
    assert members(docker_client) == []


def test_other_limits_get_a_container_with_their_own(
    pool: PooledRunner, sandboxes: SandboxFactory, docker_client: docker.DockerClient
) -> None:
    warmed(pool, sandboxes.config())
    tighter = sandboxes.config(memory_mb=96, pids=24, wall_time_s=5)
    seen: list[Sandbox] = []
    outcomes: list[tuple[int, int]] = []
    for _ in range(2):  # a miss first; then (once refilled) a member of the new key
        before = pool.pool_state()
        sandbox = pool.prepare(tighter)
        after = pool.pool_state()
        outcomes.append((after.hits - before.hits, after.misses - before.misses))
        seen.append(sandbox)
        host = docker_client.api.inspect_container(sandbox.id)["HostConfig"]
        assert (host["Memory"], host["PidsLimit"]) == (96 * 1024 * 1024, 24)
        assert pool.run(sandbox, sandboxes.program("print(1)")).status is RunStatus.OK
        wait_for(lambda: pool.pool_state().idle == 2)
    assert outcomes == [(0, 1), (1, 0)]  # made on demand the first time, then from the pool
    assert all(sandbox.launched for sandbox in seen)  # a miss waits with the launcher too


def test_members_of_a_killed_worker_are_reaped(
    settings: Settings, sandboxes: SandboxFactory, docker_client: docker.DockerClient
) -> None:
    """A worker killed outright cannot close its pool: the janitor of any other one removes
    its members once its heartbeat is gone (`reap_orphans`)."""
    runner = create_runner(settings)
    try:
        gone = runner.prepare_member(
            sandboxes.config(), lifetime_s=60, labels={POOL_LABEL: "killed:1"}
        )
        alive = runner.prepare_member(
            sandboxes.config(), lifetime_s=60, labels={POOL_LABEL: "alive:1"}
        )
        assert runner.reap_orphans(lambda owner: owner == "alive:1") == 1
        assert members(docker_client, "killed:1") == []
        assert members(docker_client, "alive:1") == [alive.id]
        assert gone.id not in members(docker_client, "killed:1")
    finally:
        runner.destroy_labelled({POOL_LABEL: "alive:1"})
        runner.close()
