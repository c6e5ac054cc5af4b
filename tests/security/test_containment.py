"""Attacks on resources: each must end as a reported status while the host carries on.

The attacks that a program's own language could change (its processes, memory, loops, output and
exit) run in each language the general image carries: Python and JavaScript (Node.js).
"""

from __future__ import annotations

from dataclasses import replace

import docker
import pytest

from executor_service.sandbox.docker_runner import DockerRunner
from executor_service.sandbox.runner import MANAGED_LABEL
from executor_service.sandbox.spec import RunStatus
from tests.conftest import SandboxFactory

pytestmark = pytest.mark.docker

LANGUAGES = ("python", "javascript")


def _containers_of(client: docker.DockerClient, test_label: str) -> list[object]:
    return client.api.containers(all=True, filters={"label": [MANAGED_LABEL, test_label]})


def test_fork_bomb_is_held_by_the_pids_limit(
    runner: DockerRunner, sandboxes: SandboxFactory
) -> None:
    bomb = ":(){ :|:& };:; sleep 3"
    result = runner.run_once(
        sandboxes.config("bash", wall_time_s=4), sandboxes.program(bomb, "bash")
    )
    assert "fork: retry: Resource temporarily unavailable" in result.stderr
    # The engine and the host still answer: the next sandbox runs normally.
    after = runner.run_once(sandboxes.config(), sandboxes.program("print('alive')"))
    assert after.status is RunStatus.OK
    assert after.stdout == "alive\n"


FORK_UNTIL_REFUSED = {
    "python": """
import os, time
count = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        count += 1
except OSError as exc:
    print(count, exc.errno)
""",
    # Node has no fork: it spawns children until the kernel refuses one (errno is negative).
    "javascript": """
const { spawn } = require('child_process');
let count = 0;
function next() {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  child.on('error', (err) => { console.log(count, -err.errno); process.exit(0); });
  child.on('spawn', () => { count += 1; next(); });
}
next();
""",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_process_count_stops_below_the_pids_limit(
    runner: DockerRunner, sandboxes: SandboxFactory, language: str
) -> None:
    code = FORK_UNTIL_REFUSED[language]
    config = sandboxes.config(language, pids=32, wall_time_s=10)
    result = runner.run_once(config, sandboxes.program(code, language))
    count, errno = result.stdout.split()
    assert int(count) < 32
    assert errno == "11"  # EAGAIN: the cgroup refused the fork


MEMORY_BOMB = {
    "python": "blocks = []\nwhile True:\n    blocks.append(b'x' * (16 << 20))\n",
    # Buffers live outside V8's heap, so no heap limit of Node's stops this before the cgroup's.
    "javascript": "const blocks = [];\nfor (;;) blocks.push(Buffer.alloc(16 << 20, 1));\n",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_memory_bomb_ends_as_memory_limit(
    runner: DockerRunner, sandboxes: SandboxFactory, language: str
) -> None:
    result = runner.run_once(
        sandboxes.config(language, memory_mb=128),
        sandboxes.program(MEMORY_BOMB[language], language),
    )
    assert result.status is RunStatus.MEMORY_LIMIT
    assert result.exit_code == 137
    if sandboxes.gvisor:
        # The host's OOM killer stops the whole sandbox (gVisor's kernel, not only the program):
        # its cgroup may be gone before a peak is read, and a peak read is the whole sandbox's
        # at the kill, which the host's kernel may have charged a page past the limit.
        return
    assert result.memory_peak_bytes is not None
    assert result.memory_peak_bytes <= 128 * 1024 * 1024


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", "while True:\n    pass\n"),
        (
            "python",
            "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass\n",
        ),
        ("javascript", "for (;;) {}\n"),
        ("javascript", "process.on('SIGTERM', () => {});\nfor (;;) {}\n"),
    ],
    ids=["busy-loop", "ignores-sigterm", "js-busy-loop", "js-ignores-sigterm"],
)
def test_infinite_loop_times_out_and_the_container_is_gone(
    runner: DockerRunner,
    sandboxes: SandboxFactory,
    docker_client: docker.DockerClient,
    language: str,
    code: str,
) -> None:
    config = replace(
        sandboxes.config(language, wall_time_s=2), labels={"agent-sandbox.test": "loop"}
    )
    result = runner.run_once(config, sandboxes.program(code, language))
    assert result.status is RunStatus.TIMEOUT
    assert result.exit_code is None
    assert result.wall_time_s >= 2
    assert _containers_of(docker_client, "agent-sandbox.test=loop") == []


FLOOD = {
    "python": "import sys\nfor _ in range(100):\n    sys.stdout.write('y' * (1 << 20))\n",
    # Writes to a pipe are synchronous in Node on Linux: the program blocks as Python's does.
    "javascript": (
        "const s = 'y'.repeat(1 << 20);\nfor (let i = 0; i < 100; i++) process.stdout.write(s);\n"
    ),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_100_mb_of_output_is_cut_at_the_cap(
    runner: DockerRunner, sandboxes: SandboxFactory, language: str
) -> None:
    config = sandboxes.config(language, output_bytes=65536)
    result = runner.run_once(config, sandboxes.program(FLOOD[language], language))
    assert result.status is RunStatus.OUTPUT_LIMIT
    assert result.stdout_truncated is True
    assert len(result.stdout) == 65536
    assert set(result.stdout) == {"y"}


SPIN = {"python": "while True:\n    pass\n", "javascript": "for (;;) {}\n"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_cpu_time_limit_kills_a_spinning_process(
    runner: DockerRunner, sandboxes: SandboxFactory, language: str
) -> None:
    config = sandboxes.config(language, cpu_time_s=1, wall_time_s=10)
    result = runner.run_once(config, sandboxes.program(SPIN[language], language))
    if sandboxes.gvisor:
        # gVisor does not enforce RLIMIT_CPU (policies/strict-gvisor.yaml says so): the spinning
        # process runs on until the wall-clock kill, which is what holds under runsc.
        assert result.status is RunStatus.TIMEOUT
        assert result.wall_time_s >= 10
        return
    # RLIMIT_CPU: SIGXCPU at the soft limit (exit 152), SIGKILL at the hard one (137).
    assert result.status is RunStatus.ERROR
    assert result.exit_code in {152, 137}
    assert result.wall_time_s < 10


EXIT_3 = {
    "python": "import sys\nprint('partial')\nprint('bad thing', file=sys.stderr)\nsys.exit(3)\n",
    "javascript": "console.log('partial');\nconsole.error('bad thing');\nprocess.exit(3);\n",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_non_zero_exit_is_reported_with_its_output(
    runner: DockerRunner, sandboxes: SandboxFactory, language: str
) -> None:
    result = runner.run_once(
        sandboxes.config(language), sandboxes.program(EXIT_3[language], language)
    )
    assert result.status is RunStatus.ERROR
    assert result.exit_code == 3
    assert result.stdout == "partial\n"
    assert result.stderr == "bad thing\n"
