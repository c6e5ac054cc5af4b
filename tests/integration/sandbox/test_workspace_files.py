"""Workspace files against the real engine: a caller's mistake is a 4xx, never the engine's 503.

Also: what a session run leaves running is killed when it ends, and collecting never fails a run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import pytest

from executor_service.errors import InvalidRequest, NotFound, PayloadTooLarge, UnsafePath
from executor_service.sandbox.cgroup import read_pids
from executor_service.sandbox.docker_runner import DockerRunner
from executor_service.sandbox.runner import Sandbox
from executor_service.sandbox.spec import RunResult, RunStatus
from tests.conftest import SandboxFactory, missing

pytestmark = pytest.mark.docker

# Lists the code user's processes other than itself, by argv.
OTHER_PROCESSES = """
import os
me = str(os.getpid())
for pid in sorted(p for p in os.listdir('/proc') if p.isdigit() and p != me):
    try:
        line = open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\\0', b' ').decode()
        print(' '.join(line.split()))
    except OSError:
        pass
"""


@pytest.fixture
def session(runner: DockerRunner, sandboxes: SandboxFactory) -> Iterator[Sandbox]:
    sandbox = runner.prepare(sandboxes.config(), single_use=False, lifetime_s=300)
    try:
        yield sandbox
    finally:
        runner.destroy(sandbox.id)


def run_code(
    runner: DockerRunner, sandboxes: SandboxFactory, sandbox: Sandbox, code: str, **kw: object
) -> RunResult:
    result = runner.run(sandbox, sandboxes.program(code, **kw))
    assert result.status is RunStatus.OK, result.stderr
    return result


# -- reading -----------------------------------------------------------------------------------


def test_a_download_over_the_cap_is_payload_too_large_not_an_engine_failure(
    runner: DockerRunner, session: Sandbox
) -> None:
    # Far over max_bytes + the old 64 KiB slack, where the exec's own output cap used to decide.
    runner.put_files(session, {"big.bin": b"x" * (3 << 20)})
    with pytest.raises(PayloadTooLarge) as caught:
        runner.read_file(session, "big.bin", max_bytes=1 << 20)
    assert str(3 << 20) in caught.value.message
    # At the limit exactly, the file comes back whole.
    runner.put_files(session, {"edge.bin": b"y" * 1000})
    assert runner.read_file(session, "edge.bin", max_bytes=1000) == b"y" * 1000


def test_binary_content_comes_back_byte_for_byte(runner: DockerRunner, session: Sandbox) -> None:
    content = bytes(range(256)) * 300 + b"\n0 ok 5\n"
    runner.put_files(session, {"dir with space/data.bin": content, "-dash.txt": b"-"})
    assert runner.read_file(session, "dir with space/data.bin", max_bytes=len(content)) == content
    assert runner.read_file(session, "-dash.txt", max_bytes=10) == b"-"


def test_reading_a_directory_or_a_missing_file_is_not_found(
    runner: DockerRunner, sandboxes: SandboxFactory, session: Sandbox
) -> None:
    run_code(runner, sandboxes, session, "import os\nos.makedirs('d/e')\nopen('f', 'w')\n")
    for path in ["d", "d/e", "absent.txt", "d/absent.txt", "f/below"]:
        with pytest.raises(NotFound):
            runner.read_file(session, path, max_bytes=100)


# -- writing -----------------------------------------------------------------------------------


def test_an_upload_under_a_regular_file_is_invalid_and_names_the_file(
    runner: DockerRunner, session: Sandbox
) -> None:
    runner.put_files(session, {"plain.txt": b"text"})
    with pytest.raises(InvalidRequest) as caught:
        runner.put_files(session, {"plain.txt/inner.txt": b"x"})
    assert not isinstance(caught.value, UnsafePath)
    assert "plain.txt is not a directory" in caught.value.message
    assert runner.read_file(session, "plain.txt", max_bytes=100) == b"text"


def test_an_upload_into_a_read_only_directory_is_invalid(
    runner: DockerRunner, sandboxes: SandboxFactory, session: Sandbox
) -> None:
    run_code(runner, sandboxes, session, "import os\nos.mkdir('ro')\nos.chmod('ro', 0o555)\n")
    for path in ["ro/x.txt", "ro/sub/x.txt"]:
        with pytest.raises(InvalidRequest) as caught:
            runner.put_files(session, {path: b"x"})
        assert "ro is not writable" in caught.value.message
    listed = [item.path for item in runner.list_files(session).files]
    assert not [path for path in listed if path.startswith("ro/")]


def test_an_upload_onto_a_directory_is_invalid(runner: DockerRunner, session: Sandbox) -> None:
    runner.put_files(session, {"d/x.txt": b"x"})
    with pytest.raises(InvalidRequest) as caught:
        runner.put_files(session, {"d": b"over a directory"})
    assert "is a directory" in caught.value.message


def test_an_upload_over_the_space_is_too_large_and_keeps_the_old_file(
    runner: DockerRunner, sandboxes: SandboxFactory
) -> None:
    sandbox = runner.prepare(sandboxes.config(workspace_mb=1), single_use=False, lifetime_s=120)
    try:
        runner.put_files(sandbox, {"keep.txt": b"old"})
        for path in ["keep.txt", "new.bin"]:
            with pytest.raises(PayloadTooLarge):
                runner.put_files(sandbox, {path: b"z" * (2 << 20)})
        assert runner.read_file(sandbox, "keep.txt", max_bytes=100) == b"old"
        # Neither the half-written file nor its temporary name is left behind.
        assert [item.path for item in runner.list_files(sandbox).files] == ["keep.txt"]
    finally:
        runner.destroy(sandbox.id)


def test_uploads_replace_files_and_make_their_directories(
    runner: DockerRunner, session: Sandbox
) -> None:
    runner.put_files(session, {"a/b/c.txt": b"first", "top.txt": b""})
    runner.put_files(session, {"a/b/c.txt": b"second"})
    assert runner.read_file(session, "a/b/c.txt", max_bytes=100) == b"second"
    listing = runner.list_files(session)
    assert listing.truncated is False
    assert [(item.path, item.size_bytes) for item in listing.files] == [
        ("a/b/c.txt", 6),
        ("top.txt", 0),
    ]


# -- listing -----------------------------------------------------------------------------------


def test_a_workspace_of_100k_files_lists_what_fits_and_collects_without_failing(
    runner: DockerRunner, sandboxes: SandboxFactory, session: Sandbox
) -> None:
    # Names long enough that the whole listing (~6 MB) is over the old 4 MiB output cap.
    make = "import os\nfor d in range(100):\n    os.mkdir(f'd{d:03}')\n"
    make += "    for n in range(1000):\n        open(f'd{d:03}/{n:05}-' + 'n' * 48 + '.txt', 'w')\n"
    run_code(runner, sandboxes, session, make)
    listing = runner.list_files(session)
    assert listing.truncated is True
    assert len(listing.files) == 10_000
    assert listing.files == sorted(listing.files, key=lambda item: item.path)
    small = runner.list_files(session, max_entries=5)
    assert (len(small.files), small.truncated) == (5, True)
    collected = runner.run(session, sandboxes.program("print('ran')", collect=("d0*/*.txt",)))
    assert collected.status is RunStatus.OK
    assert collected.stdout == "ran\n"
    assert 0 < len(collected.files) <= 16
    assert all(item.error is None for item in collected.files)


# -- collecting --------------------------------------------------------------------------------


def test_collect_reports_an_oversize_or_missing_file_and_the_run_stays_ok(
    runner: DockerRunner, sandboxes: SandboxFactory
) -> None:
    code = "open('big.bin', 'wb').write(b'B' * 5000)\nopen('small.txt', 'w').write('s')\n"
    program = sandboxes.program(
        code, collect=("big.bin", "*.txt", "missing.csv"), max_file_out_bytes=1000
    )
    result = runner.run_once(sandboxes.config(), program)
    assert result.status is RunStatus.OK
    by_path = {item.path: item for item in result.files}
    assert set(by_path) == {"big.bin", "small.txt", "missing.csv"}
    assert by_path["small.txt"].content == b"s"
    assert by_path["small.txt"].error is None
    big = by_path["big.bin"]
    assert (big.size_bytes, big.content, big.truncated) == (5000, b"", True)
    assert big.error == "over the 1000-byte limit"
    assert by_path["missing.csv"].error == "no such file"


# -- processes left behind -----------------------------------------------------------------------


def test_processes_a_session_run_leaves_are_gone_when_it_ends(
    runner: DockerRunner, sandboxes: SandboxFactory, session: Sandbox
) -> None:
    leave = """
import os, subprocess
open('kept.txt', 'w').write('kept')
subprocess.Popen(['sleep', '1000'])
if os.fork() == 0:  # a daemon: its own session, parent gone, output closed
    os.setsid()
    if os.fork() == 0:
        os.closerange(0, 3)
        os.execvp('sleep', ['sleep', '1001'])
    os._exit(0)
print('left')
"""
    first = run_code(runner, sandboxes, session, leave)
    assert first.stdout == "left\n"
    after = run_code(runner, sandboxes, session, OTHER_PROCESSES)
    others = after.stdout.splitlines()
    assert not [line for line in others if line.startswith("sleep 10")], others
    # What is left is the sandbox's own: its init and the keeper, and the launcher that waits
    # for the session's next job (and ran this one).
    launchers = [line for line in others if line.startswith("python3 -c ")]
    assert [line.rsplit(" ", 1)[-1] for line in launchers] == ["session"], others
    rest = sorted(line for line in others if line not in launchers)
    assert rest == ["/sbin/docker-init -- sleep infinity", "sleep infinity"]
    kept = run_code(runner, sandboxes, session, "print(open('kept.txt').read())")
    assert kept.stdout == "kept\n"


def kill_execs(client: docker.DockerClient, sandbox: Sandbox, since: float) -> int:
    """How many `kill` execs the engine started in the sandbox since then (waits ~2 s)."""
    events = client.events(
        since=int(since) - 1,
        until=int(time.time()) + 2,
        filters={"container": sandbox.id, "event": "exec_create"},
        decode=True,
    )
    return sum(1 for event in events if "kill -KILL" in event.get("Action", ""))


def test_only_a_run_that_leaves_processes_pays_for_the_kill(
    runner: DockerRunner,
    sandboxes: SandboxFactory,
    docker_client: docker.DockerClient,
) -> None:
    """On the exec path (an image without Python: no launcher) a kill exec runs only after a run
    that left processes; a launcher kills them itself, so a Python session never needs one."""
    shell = runner.prepare(sandboxes.config("bash"), single_use=False, lifetime_s=300)
    python = runner.prepare(sandboxes.config(), single_use=False, lifetime_s=300)
    try:
        if read_pids(shell.id) is None:
            missing("the sandbox's cgroup is not visible from here")
        started = time.time()
        for turn in range(3):
            ran = runner.run(shell, sandboxes.program(f"echo {turn}", language="bash"))
            assert ran.stdout == f"{turn}\n"
        assert kill_execs(docker_client, shell, started) == 0
        runner.run(shell, sandboxes.program("sleep 1000 > /dev/null &", language="bash"))
        assert kill_execs(docker_client, shell, started) == 1
        leave = (
            "import subprocess\nsubprocess.Popen(['sleep', '1000'], stdout=subprocess.DEVNULL)\n"
        )
        run_code(runner, sandboxes, python, leave)
        assert kill_execs(docker_client, python, started) == 0
        left = run_code(runner, sandboxes, python, OTHER_PROCESSES).stdout.splitlines()
        assert not [line for line in left if line.startswith("sleep 1000")], left
    finally:
        runner.destroy(shell.id)
        runner.destroy(python.id)
