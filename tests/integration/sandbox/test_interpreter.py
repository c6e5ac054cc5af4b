"""Interpreter sessions against the real engine: a Jupyter kernel keeps state between cells."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from executor_service.sandbox.docker_runner import DockerRunner, create_runner
from executor_service.sandbox.runner import Sandbox
from executor_service.sandbox.spec import Program, RunResult, RunStatus
from executor_service.settings import Settings
from tests.conftest import SandboxFactory

pytestmark = pytest.mark.docker


def cell(runner: DockerRunner, session: Sandbox, code: str, **files: bytes) -> RunResult:
    return runner.run(session, Program(argv=("cell",), files=files, cell=code))


@pytest.fixture
def session(runner: DockerRunner, sandboxes: SandboxFactory) -> Iterator[Sandbox]:
    sandbox = runner.prepare(
        sandboxes.config(wall_time_s=3, memory_mb=256), single_use=False, lifetime_s=180
    )
    yield sandbox
    runner.destroy(sandbox.id)


def test_a_variable_defined_in_one_cell_is_read_in_the_next(
    runner: DockerRunner, session: Sandbox
) -> None:
    first = cell(runner, session, "import math\nx = 41\nprint('set', flush=True)")
    assert first.status is RunStatus.OK, first.stderr
    assert first.stdout == "set\n"
    second = cell(runner, session, "x + 1 + int(math.sqrt(0))")
    assert second.status is RunStatus.OK, second.stderr
    assert [(o.mime_type, o.data) for o in second.outputs] == [("text/plain", b"42")]
    failed = cell(runner, session, "undefined_name")
    assert failed.status is RunStatus.ERROR
    assert "NameError" in failed.stderr
    assert "raised an exception" in failed.message


def test_files_of_a_cell_are_placed_in_the_workspace(
    runner: DockerRunner, session: Sandbox
) -> None:
    result = cell(runner, session, "print(open('data.txt').read())", **{"data.txt": b"hello"})
    assert result.status is RunStatus.OK, result.stderr
    assert result.stdout == "hello\n"


def test_an_endless_cell_is_interrupted_and_the_kernel_keeps_its_state(
    runner: DockerRunner, session: Sandbox
) -> None:
    assert cell(runner, session, "kept = 'still here'").status is RunStatus.OK
    stuck = cell(runner, session, "while True:\n    pass")
    assert stuck.status is RunStatus.TIMEOUT
    assert "interrupted" in stuck.message
    assert "KeyboardInterrupt" in stuck.stderr
    after = cell(runner, session, "print(kept)")
    assert after.status is RunStatus.OK, after.stderr
    assert after.stdout == "still here\n"
    assert "restarted" not in after.message


def test_a_plot_comes_back_as_a_png(runner: DockerRunner, session: Sandbox) -> None:
    code = (
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 2, 3], [1, 4, 9])\n"
        "plt.show()\n"
        "from IPython.display import HTML, display\n"
        "display(HTML('<b>bold</b>'))\n"
    )
    result = cell(runner, session, code)
    assert result.status is RunStatus.OK, result.stderr
    kinds = [o.mime_type for o in result.outputs]
    assert "image/png" in kinds
    assert "text/html" in kinds
    png = next(o for o in result.outputs if o.mime_type == "image/png")
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert png.size_bytes >= len(png.data) > 1000


def test_a_memory_bomb_kills_the_kernel_and_the_next_cell_gets_a_new_one(
    runner: DockerRunner, session: Sandbox
) -> None:
    assert cell(runner, session, "lost = 1").status is RunStatus.OK
    bomb = cell(runner, session, "blocks = []\nwhile True:\n    blocks.append(bytearray(2**24))")
    assert bomb.status is RunStatus.MEMORY_LIMIT, (bomb.status, bomb.message, bomb.stderr)
    assert "kernel died" in bomb.message
    after = cell(runner, session, "print('lost' in globals())")
    assert after.status is RunStatus.OK, after.stderr
    assert after.stdout == "False\n"
    assert "kernel was restarted" in after.message


def test_a_kernel_that_exits_is_reported_and_replaced(
    runner: DockerRunner, session: Sandbox
) -> None:
    died = cell(runner, session, "import os\nos._exit(3)")
    assert died.status is RunStatus.ERROR
    assert "kernel died" in died.message
    assert "code 3" in died.message
    after = cell(runner, session, "print(1 + 1)")
    assert after.stdout == "2\n"
    assert "kernel was restarted" in after.message


def test_a_cell_that_ignores_the_interrupt_is_killed_and_the_next_gets_a_new_kernel(
    runner: DockerRunner, session: Sandbox
) -> None:
    code = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    stuck = cell(runner, session, code)
    assert stuck.status is RunStatus.TIMEOUT
    assert "killed" in stuck.message
    after = cell(runner, session, "print('fresh')")
    assert after.status is RunStatus.OK, after.stderr
    assert after.stdout == "fresh\n"
    assert "kernel was restarted" in after.message


def test_the_kernel_runs_as_the_code_user_and_listens_on_loopback_at_most(
    runner: DockerRunner, session: Sandbox
) -> None:
    code = (
        "import os\n"
        "listening = [line.split()[1] for name in ('/proc/net/tcp', '/proc/net/tcp6')\n"
        "             for line in open(name).read().splitlines()[1:]\n"
        "             if line.split()[3] == '0A']\n"
        "loopback = ('0100007F:', '00000000000000000000000001000000:')\n"
        "print(os.getuid(), [a for a in listening if not a.startswith(loopback)])"
    )
    result = cell(runner, session, code)
    assert result.status is RunStatus.OK, result.stderr
    assert result.stdout == f"{session.code_uid} []\n"


def test_two_worker_processes_share_the_sessions_one_kernel(
    runner: DockerRunner, session: Sandbox, settings: Settings
) -> None:
    other = create_runner(settings)  # as another worker process: its own bridge
    try:
        assert cell(runner, session, "shared = 'from the first'").status is RunStatus.OK
        seen = cell(other, session, "print(shared)")
        assert seen.stdout == "from the first\n", seen.stderr
        assert cell(other, session, "import os\nos._exit(1)").status is RunStatus.ERROR
        assert cell(other, session, "again = 2").status is RunStatus.OK
        back = cell(runner, session, "print(again)")  # the kernel the other restarted
        assert back.stdout == "2\n", back.stderr
        assert "restarted" not in back.message
    finally:
        other.close()
