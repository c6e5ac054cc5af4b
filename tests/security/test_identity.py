"""Each sandbox has a uid of its own, so one tenant cannot use up another's per-user kernel limits.

Also what the sandbox can read of the host's paths in /proc/self/mountinfo: the engine's files
that can be hidden are, and what the kernel shows under runc is pinned to what the README says.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from executor_service.sandbox.docker_runner import DockerRunner, create_runner
from executor_service.sandbox.hardening import UID_BASE, UID_PAIRS, keeper_uid, user
from executor_service.sandbox.runner import Sandbox, WorkspaceFile
from executor_service.sandbox.spec import Program, RunResult, RunStatus, SandboxConfig
from executor_service.settings import Settings
from tests.conftest import SandboxFactory
from tests.security.conftest import MemberRunner

pytestmark = pytest.mark.docker

LEGACY_UID = 10001  # the uid every sandbox shared before
EMFILE = 24

# The code's uids, and those of every process whose command line is `sleep infinity` (the keeper).
UIDS = """
import os
def uids(pid):
    for line in open(f'/proc/{pid}/status'):
        if line.startswith('Uid:'):
            return line.split()[1:]
keepers = []
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        if open(f'/proc/{pid}/cmdline', 'rb').read() == b'sleep\\0infinity\\0':
            keepers.append((int(pid), uids(pid)[0]))
    except OSError:
        pass
print(' '.join(uids('self')), os.getgid())
for pid, uid in keepers:
    print(pid, uid)
"""

# Hold inotify instances until the kernel refuses one. EMFILE means either the per-user limit or
# this process's nofile limit, so each child stops well short of nofile and the children together
# hold them: the first child to be refused below its own fd limit met the per-user limit.
EXHAUST = """
import ctypes, os, resource, time
libc = ctypes.CDLL(None, use_errno=True)
limit = int(open('/proc/sys/fs/inotify/max_user_instances').read())
per_child = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 16
held = 0
while True:
    r, w = os.pipe()
    if os.fork() == 0:
        os.close(r)
        n = errno = 0
        while n < per_child:
            if libc.inotify_init() < 0:
                errno = ctypes.get_errno()
                break
            n += 1
        os.write(w, f'{n} {errno}'.encode())
        time.sleep(3600)
        os._exit(0)
    os.close(w)
    n, errno = map(int, os.read(r, 64).split())
    held += n
    if errno:
        print('held', held, 'limit', limit, 'refused', errno, flush=True)
        break
time.sleep(3600)
"""

INIT_ONE = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init()
print('fd' if fd >= 0 else 'refused', ctypes.get_errno() if fd < 0 else '')
"""


def python(code: str) -> Program:
    return Program(argv=("python", "-c", code))


def ok(result: RunResult) -> str:
    assert result.status is RunStatus.OK, result
    return result.stdout


@pytest.fixture
def two_sessions(runner: DockerRunner, sandboxes: SandboxFactory) -> Iterator[list[Sandbox]]:
    made = [runner.prepare(sandboxes.config(), single_use=False) for _ in range(2)]
    try:
        yield made
    finally:
        for sandbox in made:
            runner.destroy(sandbox.id)


def test_concurrent_sandboxes_and_sessions_run_as_their_own_uids(
    runner: DockerRunner, sandboxes: SandboxFactory, two_sessions: list[Sandbox]
) -> None:
    config = sandboxes.config()
    with ThreadPoolExecutor(max_workers=4) as pool:
        one_shots = [pool.submit(runner.run_once, config, python(UIDS)) for _ in range(2)]
        in_sessions = [pool.submit(runner.run, s, python(UIDS)) for s in two_sessions]
        outputs = [ok(future.result()) for future in one_shots + in_sessions]
    code_uids = []
    keeper_uids = []
    for output, handle in zip(outputs, [None, None, *two_sessions], strict=True):
        first, *keepers = output.splitlines()
        real, effective, saved, filesystem, gid = first.split()
        assert real == effective == saved == filesystem == gid  # one uid, its own group
        uid = int(real)
        assert uid != LEGACY_UID
        assert UID_BASE <= uid < UID_BASE + 2 * UID_PAIRS
        if handle is None and isinstance(runner, MemberRunner):
            assert keepers == []  # a pool member's launcher runs as the code's uid: no keeper
            code_uids.append(uid)
            continue
        [(_, keeper)] = [line.split() for line in keepers]
        assert int(keeper) == keeper_uid(uid) != uid
        if handle is not None:
            assert handle.code_uid == uid
        code_uids.append(uid)
        keeper_uids.append(int(keeper))
    # No uid shared by any two sandboxes.
    assert len(set(code_uids + keeper_uids)) == len(code_uids) + len(keeper_uids) >= 6


def test_the_code_cannot_kill_its_keeper(runner: DockerRunner, sandboxes: SandboxFactory) -> None:
    session = runner.prepare(sandboxes.config(), single_use=False)
    try:
        [_, keeper_line] = ok(runner.run(session, python(UIDS))).splitlines()
        keeper_pid = keeper_line.split()[0]
        kill = f"kill -KILL {keeper_pid}; echo $?; kill -KILL -1; echo survived"
        result = runner.run(session, Program(argv=("sh", "-c", kill)))
        # `kill -1` ends the shell itself; it never reaches the keeper, which is another uid.
        assert result.stdout.splitlines()[0] == "1", result
        assert ok(runner.run(session, python(UIDS))).splitlines()[1] == keeper_line
    finally:
        runner.destroy(session.id)


def test_exhausting_inotify_in_one_sandbox_leaves_another_working(
    runner: DockerRunner,
    sandboxes: SandboxFactory,
    two_sessions: list[Sandbox],
    docker_client: docker.DockerClient,
) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_user_instances").read_text())
    if sandboxes.config().runtime == "runsc":
        _gvisor_keeps_inotify_to_itself(runner, two_sessions, limit)
        return
    config = sandboxes.config()
    # 64 pids and ~240 instances a child: a host allowing more than that cannot be exhausted here.
    if limit > (config.limits.pids - 8) * (config.limits.nofile - 16):
        pytest.skip(f"fs.inotify.max_user_instances is {limit}: too many to hold in one sandbox")
    hog, other = two_sessions
    held = threading.Event()
    stop = threading.Event()
    lines: list[bytes] = []

    def seen(_stream: str, data: bytes) -> None:
        lines.append(data)
        said = b"".join(lines)
        if b"refused" in said and said.endswith(b"\n"):  # the whole line, with its errno
            held.set()

    with ThreadPoolExecutor(max_workers=1) as pool:
        holding = pool.submit(runner.run, hog, python(EXHAUST), on_output=seen, cancel=stop)
        try:
            assert held.wait(timeout=20), (b"".join(lines), holding.done() and holding.result())
            words = b"".join(lines).decode().split()
            assert words == ["held", str(limit), "limit", str(limit), "refused", str(EMFILE)]
            # The control: a process of the hog's uid, anywhere, is refused now ...
            assert hog.code_uid is not None
            refused = docker_client.containers.get(other.id).exec_run(
                ["python", "-c", INIT_ONE], user=user(hog.code_uid)
            )
            assert refused.output.decode().split() == ["refused", str(EMFILE)], refused
            # ... while the other sandbox's own code is not.
            assert ok(runner.run(other, python(INIT_ONE))).split() == ["fd"]
        finally:
            stop.set()
        assert holding.result().status is RunStatus.CANCELLED
    # The hog's instances went with its processes: its own session works again.
    assert ok(runner.run(hog, python(INIT_ONE))).split() == ["fd"]


HOLD_MORE_THAN_THE_HOST = """
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
fds = [libc.inotify_init() for _ in range(int(sys.argv[1]))]
print('held', sum(fd >= 0 for fd in fds), flush=True)
time.sleep(60)
"""


def _gvisor_keeps_inotify_to_itself(
    runner: DockerRunner, two_sessions: list[Sandbox], limit: int
) -> None:
    """Under gVisor inotify lives in the sandbox's own kernel: one sandbox holds more instances
    than the host allows a user, and another sandbox still gets one meanwhile."""
    hog, other = two_sessions
    wanted = limit + 16
    held = threading.Event()
    stop = threading.Event()
    lines: list[bytes] = []

    def seen(_stream: str, data: bytes) -> None:
        lines.append(data)
        so_far = b"".join(lines)
        if b"held" in so_far and so_far.endswith(b"\n"):  # the whole line, not its first chunk
            held.set()

    program = Program(argv=("python", "-c", HOLD_MORE_THAN_THE_HOST, str(wanted)))
    with ThreadPoolExecutor(max_workers=1) as pool:
        holding = pool.submit(runner.run, hog, program, on_output=seen, cancel=stop)
        try:
            assert held.wait(timeout=30), (b"".join(lines), holding.done() and holding.result())
            assert b"".join(lines).decode().split() == ["held", str(wanted)]
            assert ok(runner.run(other, python(INIT_ONE))).split() == ["fd"]
        finally:
            stop.set()
        assert holding.result().status is RunStatus.CANCELLED


def test_a_session_handle_rebuilt_from_its_id_runs_as_the_same_uid(
    runner: DockerRunner, sandboxes: SandboxFactory, settings: Settings
) -> None:
    config = sandboxes.config()
    session = runner.prepare(config, single_use=False)
    # Another worker process: a runner of its own that has never seen this sandbox.
    elsewhere = create_runner(settings)
    try:
        write = "import os; open('kept.txt', 'w').write('one'); print(os.getuid())"
        uid = int(ok(runner.run(session, python(write))))
        assert uid == session.code_uid
        rebuilt = Sandbox(id=session.id, config=config, single_use=False)
        read = "import os; print(os.getuid(), open('kept.txt').read()); open('two.txt', 'w')"
        assert ok(elsewhere.run(rebuilt, python(read))).split() == [str(uid), "one"]
        elsewhere.put_files(rebuilt, {"sub/three.txt": b"three"})
        paths = ("two.txt", "sub/three.txt", "sub", ".")
        owners = f"import os; print(*sorted({{os.stat(p).st_uid for p in {paths!r}}}))"
        assert ok(runner.run(session, python(owners))).split() == [str(uid)]
        assert runner.list_files(session).files == [
            WorkspaceFile("kept.txt", 3),
            WorkspaceFile("sub/three.txt", 5),
            WorkspaceFile("two.txt", 0),
        ]
    finally:
        elsewhere.close()
        runner.destroy(session.id)


def test_the_workspace_and_tmp_belong_to_the_sandboxs_uid_and_programs_find_a_home(
    runner: DockerRunner, sandboxes: SandboxFactory
) -> None:
    code = """
import getpass, os, pathlib
import matplotlib.pyplot as plt
plt.plot([1, 2]); plt.savefig('plot.png')
print(os.getuid(), os.stat('/workspace').st_uid, os.stat('/tmp').st_uid)
print(pathlib.Path.home(), getpass.getuser(), os.path.isdir('/tmp/matplotlib'))
"""
    first, second = ok(runner.run_once(sandboxes.config(), python(code))).splitlines()
    uid, workspace_owner, tmp_owner = first.split()
    assert uid == workspace_owner == tmp_owner
    assert second.split() == ["/workspace", "sandbox", "True"]


def _host_paths(mountinfo: str) -> dict[str, str]:
    """Mount point -> the host path a line shows: a bind's source, or an overlay's directories."""
    found = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        root, mount_point = fields[3], fields[4]
        super_options = fields[fields.index("-") + 3]
        if "dir=/" in super_options:  # overlay's lowerdir=, upperdir=, workdir=
            found[mount_point] = super_options
        elif root != "/" and fields[fields.index("-") + 1] not in {"proc", "tmpfs", "devtmpfs"}:
            found[mount_point] = root
    return found


def test_mountinfo_shows_no_engine_file_and_only_what_runc_cannot_hide(
    runner: DockerRunner, sandboxes: SandboxFactory
) -> None:
    config: SandboxConfig = sandboxes.config(policy="data-readonly")
    [data] = config.mounts
    sandbox = runner.prepare(config)
    result = runner.run(sandbox, Program(argv=("cat", "/proc/self/mountinfo")))
    mountinfo = ok(result)
    assert "/var/lib/docker/containers" not in mountinfo  # the engine's hostname, hosts, ...
    assert sandbox.id[:12] not in mountinfo
    shown = _host_paths(mountinfo)
    if config.runtime == "runsc":
        assert data.host_path not in mountinfo
        assert shown == {}
        return
    # runc: the kernel shows a bind mount's path within its host filesystem and the root's
    # overlay directories, and the engine's init is a bind of its own binary (README, hardening).
    assert set(shown) == {"/", "/usr/sbin/docker-init", data.sandbox_path}, shown
    assert shown[data.sandbox_path] == data.host_path
    assert "/overlay2/" in shown["/"]
