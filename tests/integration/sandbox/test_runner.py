"""The runner against the real engine: input, output, files, sessions, stops."""

from __future__ import annotations

import threading
import time

import docker
import pytest

from executor_service.errors import NotFound, PayloadTooLarge, UnsafePath
from executor_service.sandbox.docker_runner import DockerRunner
from executor_service.sandbox.runner import MANAGED_LABEL
from executor_service.sandbox.spec import Program, RunStatus, SandboxConfig
from executor_service.settings import Settings
from tests.conftest import SandboxFactory

pytestmark = pytest.mark.docker


def labelled(client: docker.DockerClient, label: str) -> list[object]:
    return client.api.containers(all=True, filters={"label": [MANAGED_LABEL, label]})


def test_stdin_args_and_environment_reach_the_program(
    runner: DockerRunner, sandboxes: SandboxFactory
) -> None:
    code = "import os, sys\nprint(sys.stdin.read().upper(), sys.argv[1:], os.environ['GREETING'])\n"
    runtime_argv = sandboxes.program(code).argv
    program = Program(
        argv=(*runtime_argv, "--flag", "two words"),
        files={"main.py": code.encode()},
        stdin=b"shout\n",
        env={"GREETING": "hi"},
    )
    result = runner.run_once(sandboxes.config(), program)
    assert result.status is RunStatus.OK
    assert result.stdout == "SHOUT\n ['--flag', 'two words'] hi\n"
    assert result.cpu_time_s is not None
    assert result.memory_peak_bytes is not None


def test_python_image_has_the_data_stack_offline(
    runner: DockerRunner, sandboxes: SandboxFactory
) -> None:
    code = """
import numpy as np, pandas as pd, matplotlib.pyplot as plt
frame = pd.DataFrame({'x': np.arange(5), 'y': np.arange(5) ** 2})
frame.plot(x='x', y='y').get_figure().savefig('plot.png')
print(int(frame['y'].sum()))
"""
    result = runner.run_once(sandboxes.config(), sandboxes.program(code, collect=("*.png",)))
    assert result.status is RunStatus.OK, result.stderr
    assert result.stdout == "30\n"
    [plot] = result.files
    assert plot.path == "plot.png"
    assert plot.content.startswith(b"\x89PNG")


def test_files_in_and_collected_files_out(runner: DockerRunner, sandboxes: SandboxFactory) -> None:
    code = """
import os
print(open('data/in.txt').read())
os.makedirs('out', exist_ok=True)
open('out/a.txt', 'w').write('A')
open('out/big.txt', 'w').write('B' * 5000)
os.symlink('/etc/passwd', 'out/link.txt')
"""
    program = Program(
        argv=("python", "main.py"),
        files={"main.py": code.encode(), "data/in.txt": b"given"},
        collect=("out/*",),
        max_file_out_bytes=1000,
    )
    result = runner.run_once(sandboxes.config(), program)
    assert result.stdout == "given\n"
    by_path = {item.path: item for item in result.files}
    assert set(by_path) == {"out/a.txt", "out/big.txt"}  # the symlink is never followed
    assert by_path["out/a.txt"].content == b"A"
    assert by_path["out/big.txt"].truncated is True
    assert by_path["out/big.txt"].size_bytes == 5000


def test_output_streams_while_the_code_runs(
    runner: DockerRunner, sandboxes: SandboxFactory
) -> None:
    seen: list[tuple[str, bytes, float]] = []
    code = "import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second')\n"
    result = runner.run_once(
        sandboxes.config(),
        sandboxes.program(code),
        on_output=lambda stream, chunk: seen.append((stream, chunk, time.monotonic())),
    )
    finished = time.monotonic()
    assert result.stdout == "first\nsecond\n"
    assert {stream for stream, _, _ in seen} == {"stdout"}
    # The engine may split a line across chunks; what matters is when the first line was whole.
    received = b""
    whole_at = None
    for _, chunk, at in seen:
        received += chunk
        if whole_at is None and received.startswith(b"first\n"):
            whole_at = at
    assert whole_at is not None
    # The first line arrived while the program was still sleeping, not at the end.
    assert finished - whole_at >= 1.0


def test_a_session_keeps_its_workspace_between_runs(
    runner: DockerRunner, sandboxes: SandboxFactory
) -> None:
    config = sandboxes.config(wall_time_s=2)
    session = runner.prepare(config, single_use=False, lifetime_s=120)
    try:
        runner.put_files(session, {"notes/plan.txt": b"step 1"})
        first = runner.run(session, sandboxes.program("open('state.txt', 'w').write('42')"))
        assert first.status is RunStatus.OK
        second = runner.run(
            session,
            sandboxes.program("print(open('state.txt').read(), open('notes/plan.txt').read())"),
        )
        assert second.stdout == "42 step 1\n"
        listed = {item.path: item.size_bytes for item in runner.list_files(session).files}
        assert listed == {"main.py": listed["main.py"], "notes/plan.txt": 6, "state.txt": 2}
        assert runner.read_file(session, "state.txt", max_bytes=10) == b"42"
    finally:
        runner.destroy(session.id)


def test_a_session_timeout_kills_the_run_but_keeps_the_workspace(
    runner: DockerRunner, sandboxes: SandboxFactory
) -> None:
    session = runner.prepare(sandboxes.config(wall_time_s=1), single_use=False, lifetime_s=120)
    try:
        hang = "import subprocess\nopen('kept.txt','w').write('yes')\n"
        hang += "subprocess.Popen(['sleep', '300'])\nwhile True:\n    pass\n"
        result = runner.run(session, sandboxes.program(hang))
        assert result.status is RunStatus.TIMEOUT
        check = "import os\nprint(open('kept.txt').read(), sum(1 for p in os.listdir('/proc') "
        check += "if p.isdigit() and open(f'/proc/{p}/cmdline').read() == 'sleep\\x00300\\x00'))\n"
        after = runner.run(session, sandboxes.program(check))
        # The file stays; the orphaned `sleep 300` is gone.
        assert after.stdout == "yes 0\n"
    finally:
        runner.destroy(session.id)


def test_workspace_file_access_refuses_escapes_links_and_oversize(
    runner: DockerRunner, sandboxes: SandboxFactory
) -> None:
    session = runner.prepare(sandboxes.config(), single_use=False, lifetime_s=120)
    try:
        with pytest.raises(UnsafePath):
            runner.put_files(session, {"../escape.txt": b"x"})
        with pytest.raises(UnsafePath):
            runner.read_file(session, "/etc/passwd", max_bytes=100)
        runner.run(session, sandboxes.program("import os\nos.symlink('/etc/passwd', 'link')\n"))
        with pytest.raises(UnsafePath):
            runner.read_file(session, "link", max_bytes=10_000)
        runner.put_files(session, {"big.bin": b"x" * 2000})
        with pytest.raises(PayloadTooLarge):
            runner.read_file(session, "big.bin", max_bytes=1000)
        with pytest.raises(NotFound):
            runner.read_file(session, "absent.txt", max_bytes=1000)
    finally:
        runner.destroy(session.id)


def test_cancel_kills_a_long_run_and_removes_the_container(
    runner: DockerRunner, sandboxes: SandboxFactory, docker_client: docker.DockerClient
) -> None:
    base = sandboxes.config(wall_time_s=30)
    config = SandboxConfig(
        image=base.image, limits=base.limits, labels={"agent-sandbox.test": "cancel"}
    )
    cancel = threading.Event()
    timer = threading.Timer(1.0, cancel.set)
    timer.start()
    result = runner.run_once(
        config, sandboxes.program("import time\ntime.sleep(60)\n"), cancel=cancel
    )
    timer.join()
    assert result.status is RunStatus.CANCELLED
    assert result.wall_time_s < 30
    assert labelled(docker_client, "agent-sandbox.test=cancel") == []


def test_reaper_removes_only_sandboxes_past_their_deadline(
    docker_client: docker.DockerClient, sandboxes: SandboxFactory, settings: Settings
) -> None:
    impatient = DockerRunner(docker_client, reap_grace_s=0.0, instance=settings.instance)
    base = sandboxes.config()
    expired = impatient.prepare(
        SandboxConfig(image=base.image, limits=base.limits, labels={"agent-sandbox.test": "old"}),
        lifetime_s=0.0,
    )
    current = impatient.prepare(
        SandboxConfig(image=base.image, limits=base.limits, labels={"agent-sandbox.test": "new"}),
        lifetime_s=600,
    )
    try:
        time.sleep(1.1)
        impatient.reap()
        assert labelled(docker_client, "agent-sandbox.test=old") == []
        assert len(labelled(docker_client, "agent-sandbox.test=new")) == 1
        assert impatient.destroy_labelled({"agent-sandbox.test": "new"}) == 1
        assert labelled(docker_client, "agent-sandbox.test=new") == []
    finally:
        impatient.destroy(expired.id)
        impatient.destroy(current.id)


def test_the_data_readonly_policy_shows_its_data(
    runner: DockerRunner, sandboxes: SandboxFactory
) -> None:
    config = sandboxes.config(policy="data-readonly")
    assert [mount.sandbox_path for mount in config.mounts] == ["/data"]
    code = "import os\nprint(sorted(os.listdir('/data')))\n"
    result = runner.run_once(config, sandboxes.program(code, policy="data-readonly"))
    assert result.status is RunStatus.OK, result.stderr
    assert ".csv" in result.stdout


def test_reapers_touch_only_their_own_instance(
    docker_client: docker.DockerClient, sandboxes: SandboxFactory, settings: Settings
) -> None:
    """Two deployments on one engine: neither's reaper, orphan sweep or label sweep removes the
    other's sandboxes, even ones past their deadline whose worker it has never heard of."""
    ours = DockerRunner(docker_client, reap_grace_s=0.0, instance=settings.instance)
    theirs = DockerRunner(docker_client, reap_grace_s=0.0, instance=f"{settings.instance}-other")
    base = sandboxes.config()
    expired = ours.prepare(
        SandboxConfig(image=base.image, limits=base.limits, labels={"agent-sandbox.test": "mine"}),
        lifetime_s=0.0,
    )
    try:
        time.sleep(1.1)
        assert theirs.reap(everything=True) == 0
        assert theirs.reap_orphans(lambda owner: False) == 0
        assert theirs.destroy_labelled({"agent-sandbox.test": "mine"}) == 0
        assert len(labelled(docker_client, "agent-sandbox.test=mine")) == 1
        assert ours.reap() == 1
        assert labelled(docker_client, "agent-sandbox.test=mine") == []
    finally:
        ours.destroy(expired.id)


def test_a_session_runs_its_programs_through_one_waiting_launcher(
    runner: DockerRunner, sandboxes: SandboxFactory
) -> None:
    """No exec per run: each program is a child of the same launcher, which survives a failing
    program, and is replaced when the code kills it (that run is an error, the next one works)."""
    session = runner.prepare(sandboxes.config(wall_time_s=5), single_use=False, lifetime_s=120)
    parent = "import os\nprint(os.getppid())\n"
    try:
        first = runner.run(session, sandboxes.program(parent))
        failing = runner.run(session, sandboxes.program("raise SystemExit(3)"))
        second = runner.run(session, sandboxes.program(parent))
        assert (failing.status, failing.exit_code) == (RunStatus.ERROR, 3)
        assert first.stdout == second.stdout != ""
        killed = runner.run(session, sandboxes.program("import os\nos.kill(os.getppid(), 9)\n"))
        assert (killed.status, killed.exit_code) == (RunStatus.ERROR, 137)
        third = runner.run(session, sandboxes.program(parent))
        assert third.status is RunStatus.OK
        assert third.stdout not in ("", first.stdout)
        shell = runner.run(session, sandboxes.program("echo from bash", language="bash"))
        assert (shell.status, shell.stdout) == (RunStatus.OK, "from bash\n")
    finally:
        runner.destroy(session.id)
