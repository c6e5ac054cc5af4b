"""Symlinks the code makes in its workspace never lead a file transfer out of it.

The code may point any name at any path (`etcdir -> /etc`); reading, writing or collecting a path
that passes through such a link is refused as unsafe_path, even while the code swaps directories
for links as fast as it can.
"""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from executor_service.errors import ServiceError, UnsafePath
from executor_service.sandbox.docker_runner import DockerRunner
from executor_service.sandbox.hardening import WORKSPACE, user
from executor_service.sandbox.runner import Sandbox
from executor_service.sandbox.spec import Program, RunResult, RunStatus
from tests.conftest import SandboxFactory

pytestmark = pytest.mark.docker

LINKS = """
import os
os.makedirs('/tmp/outside', exist_ok=True)
open('/tmp/target.txt', 'w').write('original')
os.symlink('/etc', 'etcdir')
os.symlink('/tmp/outside', 'outdir')
os.symlink('/etc/passwd', 'passwd')
os.symlink('/tmp/target.txt', 'target.txt')
"""
OUTSIDE = """
import os
print(sorted(os.listdir('/tmp/outside')), open('/tmp/target.txt').read())
print(os.path.islink('outdir'), os.path.islink('target.txt'))
"""


@pytest.fixture
def linked(runner: DockerRunner, sandboxes: SandboxFactory) -> Iterator[Sandbox]:
    """A session whose code has left symlinks out of its workspace."""
    sandbox = runner.prepare(sandboxes.config(), single_use=False, lifetime_s=300)
    try:
        made = runner.run(sandbox, sandboxes.program(LINKS))
        assert made.status is RunStatus.OK, made.stderr
        yield sandbox
    finally:
        runner.destroy(sandbox.id)


def outside(runner: DockerRunner, sandboxes: SandboxFactory, sandbox: Sandbox) -> RunResult:
    result = runner.run(sandbox, sandboxes.program(OUTSIDE))
    assert result.status is RunStatus.OK, result.stderr
    return result


@pytest.mark.parametrize("path", ["etcdir/passwd", "passwd", "etcdir"])
def test_reading_through_a_symlink_is_unsafe(
    runner: DockerRunner, linked: Sandbox, path: str
) -> None:
    with pytest.raises(UnsafePath) as caught:
        runner.read_file(linked, path, max_bytes=1 << 20)
    assert "passes through a symlink" in caught.value.message


@pytest.mark.parametrize("path", ["outdir/x.txt", "outdir/new/deeper/x.txt", "target.txt"])
def test_writing_through_a_symlink_is_unsafe_and_writes_nothing_outside(
    runner: DockerRunner, sandboxes: SandboxFactory, linked: Sandbox, path: str
) -> None:
    with pytest.raises(UnsafePath) as caught:
        runner.put_files(linked, {path: b"planted"})
    assert "passes through a symlink" in caught.value.message
    after = outside(runner, sandboxes, linked)
    assert after.stdout == "[] original\nTrue True\n"


def test_a_session_runs_files_are_not_placed_through_a_symlink(
    runner: DockerRunner, sandboxes: SandboxFactory, linked: Sandbox
) -> None:
    program = Program(
        argv=("python", "main.py"),
        files={"main.py": b"print('ran')", "outdir/planted.py": b"x = 1"},
    )
    result = runner.run(linked, program)
    assert result.status is RunStatus.ERROR
    assert result.exit_code == 125
    assert "passes through a symlink" in result.stderr
    assert result.stdout == ""
    assert outside(runner, sandboxes, linked).stdout == "[] original\nTrue True\n"


def test_collecting_through_a_symlink_reports_the_file_and_the_run_is_ok(
    runner: DockerRunner, sandboxes: SandboxFactory
) -> None:
    code = LINKS + "os.mkdir('out')\nopen('out/real.txt', 'w').write('real')\n"
    program = sandboxes.program(code, collect=("etcdir/passwd", "passwd", "out/*", "*.txt"))
    result = runner.run_once(sandboxes.config(), program)
    assert result.status is RunStatus.OK, result.stderr
    by_path = {item.path: item for item in result.files}
    # "*.txt" matches no link: a glob picks regular files only.
    assert set(by_path) == {"etcdir/passwd", "passwd", "out/real.txt"}
    assert by_path["out/real.txt"].content == b"real"
    for name in ("etcdir/passwd", "passwd"):
        assert by_path[name].content == b""
        assert by_path[name].error is not None
        assert "passes through a symlink" in by_path[name].error


def test_swapping_directories_for_links_during_transfers_never_escapes(
    runner: DockerRunner,
    sandboxes: SandboxFactory,
    linked: Sandbox,
    docker_client: docker.DockerClient,
) -> None:
    # Another process of the code's user flips `d` (-> /etc) and `w` (-> /tmp/outside) between
    # real directories and links while the transfers run: every check-then-use gap is tried.
    flip = (
        "while :; do rm -rf d w; mkdir d w; echo inside > d/passwd; "
        "rm -rf d w; ln -s /etc d; ln -s /tmp/outside w; done"
    )
    assert linked.code_uid is not None
    exec_id = docker_client.api.exec_create(
        linked.id, ["/bin/sh", "-c", flip], user=user(linked.code_uid), workdir=WORKSPACE
    )["Id"]
    docker_client.api.exec_start(exec_id, detach=True)
    outcomes: set[str] = set()
    for _ in range(60):
        try:
            content = runner.read_file(linked, "d/passwd", max_bytes=1 << 20)
            assert b"root:" not in content
            outcomes.add("read")
        except ServiceError as exc:
            outcomes.add(type(exc).__name__)
        try:
            runner.put_files(linked, {"w/sub/planted.txt": b"planted"})
            outcomes.add("written")
        except ServiceError as exc:
            outcomes.add(type(exc).__name__)
    assert "UnsafePath" in outcomes, outcomes  # the flipping was seen, not missed
    # A race the code makes is the caller's conflict (409), never the engine's failure (503).
    assert "SandboxError" not in outcomes, outcomes
    after = outside(runner, sandboxes, linked)
    assert after.stdout.startswith("[] original\n"), after.stdout
