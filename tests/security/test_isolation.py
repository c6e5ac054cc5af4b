"""What sandboxed code can see and touch: nothing of the host, nothing writable but its own.

Each probe a program could make differently in another language runs in Python and in JavaScript
(Node.js), printing the same lines; the system-call filter is probed from Python alone (Node has
no raw system calls), as it is the container's, whatever runs inside.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from executor_service.sandbox.docker_runner import DockerRunner
from executor_service.sandbox.hardening import UID_BASE, UID_PAIRS
from executor_service.sandbox.spec import Mount, RunStatus
from tests.conftest import SandboxFactory
from tests.security.conftest import MemberRunner

pytestmark = pytest.mark.docker

LANGUAGES = ("python", "javascript")


def run_python(runner: DockerRunner, sandboxes: SandboxFactory, code: str, **limits: object) -> str:
    return run_code(runner, sandboxes, code, "python", **limits)


def run_code(
    runner: DockerRunner, sandboxes: SandboxFactory, code: str, language: str, **limits: object
) -> str:
    result = runner.run_once(
        sandboxes.config(language, **limits), sandboxes.program(code, language)
    )
    assert result.status is RunStatus.OK, result
    return result.stdout


STATUS = {
    "python": "print(open('/proc/self/status').read())",
    "javascript": "console.log(require('fs').readFileSync('/proc/self/status', 'utf8'))",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_process_is_not_root_and_has_no_capabilities(
    runner: DockerRunner, sandboxes: SandboxFactory, language: str
) -> None:
    status = run_code(runner, sandboxes, STATUS[language], language)
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    [uid] = set(fields["Uid"].split())  # real, effective, saved and filesystem uid agree
    assert fields["Gid"].split() == [uid] * 4
    assert UID_BASE <= int(uid) < UID_BASE + 2 * UID_PAIRS  # the sandbox's own, never root
    if sandboxes.gvisor:
        # gVisor's status file has no CapAmb or NoNewPrivs line, and reports Seccomp 0: runsc
        # loads no OCI seccomp profile (no --oci-seccomp); the code's system calls are served by
        # gVisor's kernel, which itself runs under gVisor's own host filter.
        assert "CapAmb" not in fields
        assert "NoNewPrivs" not in fields
        for capability_set in ("CapInh", "CapPrm", "CapEff", "CapBnd"):
            assert int(fields[capability_set].strip(), 16) == 0, capability_set
        assert fields["Seccomp"].strip() == "0"
        return
    for capability_set in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[capability_set].strip(), 16) == 0, capability_set
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"  # a filter is installed, not "unconfined"


WRITE_ROOT = {
    "python": """
for path in ('/etc/evil', '/usr/evil', '/evil', '/home/evil'):
    try:
        open(path, 'w').write('x')
        print(path, 'WRITTEN')
    except OSError as exc:
        print(path, exc.errno)
""",
    "javascript": """
const fs = require('fs');
for (const path of ['/etc/evil', '/usr/evil', '/evil', '/home/evil']) {
  try {
    fs.writeFileSync(path, 'x');
    console.log(path, 'WRITTEN');
  } catch (err) {
    console.log(path, -err.errno);
  }
}
""",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_root_filesystem_is_read_only(
    runner: DockerRunner, sandboxes: SandboxFactory, language: str
) -> None:
    out = run_code(runner, sandboxes, WRITE_ROOT[language], language)
    assert "WRITTEN" not in out
    if sandboxes.gvisor:
        # gVisor checks permissions before the mount's flags, so the code's user gets EACCES, not
        # EROFS; that the root is read-only shows in gVisor's mount table.
        assert out.count(" 13") == 4
        mounts = run_python(runner, sandboxes, "print(open('/proc/self/mountinfo').read())")
        root = next(line.split() for line in mounts.splitlines() if line.split()[4] == "/")
        assert "ro" in root[5].split(","), root
        return
    assert out.count(" 30") == 4  # EROFS for every path


EXEC_TMP = {
    "python": """
import os, subprocess
open('/tmp/x.sh', 'w').write('#!/bin/sh\\necho ran\\n')
os.chmod('/tmp/x.sh', 0o755)
try:
    subprocess.run(['/tmp/x.sh'], check=True)
except PermissionError as exc:
    print('refused', exc.errno)
""",
    "javascript": """
const fs = require('fs');
const { spawnSync } = require('child_process');
fs.writeFileSync('/tmp/x.sh', '#!/bin/sh\\necho ran\\n');
fs.chmodSync('/tmp/x.sh', 0o755);
const ran = spawnSync('/tmp/x.sh');
console.log(ran.error ? `refused ${-ran.error.errno}` : String(ran.stdout));
""",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_tmp_is_not_executable(
    runner: DockerRunner, sandboxes: SandboxFactory, language: str
) -> None:
    assert run_code(runner, sandboxes, EXEC_TMP[language], language).strip() == "refused 13"


FILL_WORKSPACE = {
    "python": """
try:
    with open('big', 'wb') as f:
        for _ in range(64):
            f.write(b'x' * (1 << 20))
    print('WROTE ALL')
except OSError as exc:
    print('stopped', exc.errno)
""",
    "javascript": """
const fs = require('fs');
try {
  const fd = fs.openSync('big', 'w');
  const block = Buffer.alloc(1 << 20, 120);
  for (let i = 0; i < 64; i++) fs.writeSync(fd, block);
  console.log('WROTE ALL');
} catch (err) {
  console.log('stopped', -err.errno);
}
""",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_writing_past_the_workspace_size_fails(
    runner: DockerRunner, sandboxes: SandboxFactory, language: str
) -> None:
    result = runner.run_once(
        sandboxes.config(language, workspace_mb=8, memory_mb=256),
        sandboxes.program(FILL_WORKSPACE[language], language),
    )
    # ENOSPC from the tmpfs size, or EFBIG from the fsize ulimit (SIGXFSZ ignored by Python).
    assert result.stdout.strip() in {"stopped 28", "stopped 27"}, result


def test_read_only_data_mount_cannot_be_written(
    runner: DockerRunner, sandboxes: SandboxFactory, tmp_path: Path
) -> None:
    (tmp_path / "ref.csv").write_text("a,b\n1,2\n")
    # World-writable on the host, so only the read-only mount can be what refuses the write.
    (tmp_path / "ref.csv").chmod(0o666)
    tmp_path.chmod(0o777)
    config = replace(
        sandboxes.config(), mounts=(Mount(host_path=str(tmp_path), sandbox_path="/data"),)
    )
    code = """
print(open('/data/ref.csv').read().splitlines()[1])
for path in ('/data/ref.csv', '/data/new.csv'):
    try:
        open(path, 'a').write('x')
        print('WRITTEN')
    except OSError as exc:
        print('refused', exc.errno)
"""
    result = runner.run_once(config, sandboxes.program(code))
    assert result.stdout.splitlines() == ["1,2", "refused 30", "refused 30"]
    assert (tmp_path / "ref.csv").read_text() == "a,b\n1,2\n"


NETWORK = {
    "python": """
import socket
interfaces = [line.split(':')[0].strip() for line in open('/proc/net/dev').readlines()[2:]]
routes = open('/proc/net/route').read().splitlines()[1:]
routes6 = [l for l in open('/proc/net/ipv6_route').read().splitlines() if not l.endswith('lo')]
print(interfaces, len(routes), len(routes6))
try:
    socket.getaddrinfo('example.com', 80)
    print('RESOLVED')
except socket.gaierror:
    print('no name resolution')
print(repr(open('/etc/resolv.conf').read()))
""",
    "javascript": """
const fs = require('fs');
const lines = (path) => fs.readFileSync(path, 'utf8').split('\\n').filter(Boolean);
const interfaces = lines('/proc/net/dev').slice(2).map((line) => line.split(':')[0].trim());
const routes = lines('/proc/net/route').slice(1);
const routes6 = lines('/proc/net/ipv6_route').filter((line) => !line.endsWith('lo'));
console.log(`['${interfaces.join("', '")}'] ${routes.length} ${routes6.length}`);
require('dns').lookup('example.com', (err) => {
  console.log(err ? 'no name resolution' : 'RESOLVED');
  console.log(JSON.stringify(fs.readFileSync('/etc/resolv.conf', 'utf8')));
});
""",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_network_but_loopback_and_no_route(
    runner: DockerRunner, sandboxes: SandboxFactory, language: str
) -> None:
    lines = run_code(runner, sandboxes, NETWORK[language], language).splitlines()
    assert lines[0] == "['lo'] 0 0"
    assert lines[1] == "no name resolution"
    assert "nameserver" not in lines[2]


# Python's spelling of what the JavaScript probes print, so both answer in the same lines.
JS_PY = "const py = (value) => (value ? 'True' : 'False');\n"


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_docker_socket_host_environment_or_host_files(
    runner: DockerRunner,
    sandboxes: SandboxFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    language: str,
) -> None:
    monkeypatch.setenv("HOST_CANARY_SECRET", "s3cr3t-canary")
    canary = tmp_path / "host-canary.txt"
    canary.write_text("host file canary")
    javascript = (
        JS_PY
        + f"""
const fs = require('fs');
console.log(py(fs.existsSync('/var/run/docker.sock')), py(fs.existsSync('/run/docker.sock')));
console.log(py(fs.existsSync({str(canary)!r})));
const env = fs.readFileSync('/proc/self/environ', 'latin1');
console.log(py(env.includes('s3cr3t-canary')), JSON.stringify(Object.keys(process.env).sort()));
try {{
  const keeper = fs.readFileSync('/proc/1/environ', 'latin1').split('\\0').filter(Boolean);
  console.log('keeper environment READ', JSON.stringify(keeper.map((i) => i.split('=')[0]).sort()));
}} catch (err) {{
  if (err.code !== 'EACCES') throw err;
  console.log('keeper environment refused');
}}
console.log(require('os').hostname(), `'${{fs.readFileSync('/etc/hostname', 'utf8')}}'`);
"""
    )
    python = f"""
import os
print(os.path.exists('/var/run/docker.sock'), os.path.exists('/run/docker.sock'))
print(os.path.exists({str(canary)!r}))
env = open('/proc/self/environ', 'rb').read()
print(b's3cr3t-canary' in env, sorted(os.environ))
try:
    keeper = open('/proc/1/environ', 'rb').read().decode().split('\\0')
    print('keeper environment READ', sorted(item.split('=')[0] for item in keeper if item))
except PermissionError:
    print('keeper environment refused')
import socket
print(socket.gethostname(), repr(open('/etc/hostname').read()))
"""
    assert os.environ["HOST_CANARY_SECRET"] == "s3cr3t-canary"
    code = {"python": python, "javascript": javascript}[language]
    lines = run_code(runner, sandboxes, code, language).splitlines()
    assert lines[0] == "False False"
    assert lines[1] == "False"
    assert lines[2].startswith("False ")
    assert "HOST_CANARY_SECRET" not in lines[2]
    if sandboxes.gvisor or isinstance(runner, MemberRunner):
        # gVisor lets the code read the keeper's (another uid's) /proc/1/environ where Linux
        # refuses; in a pool member init runs as the code's uid (it serves this one run). It
        # holds the image's variables only: nothing of the host's reaches a sandbox.
        assert lines[3].startswith("keeper environment READ [")
        assert "HOST_CANARY_SECRET" not in lines[3]
    else:
        assert lines[3] == "keeper environment refused"
    # The name is the neutral one; /etc/hostname is empty rather than the engine's file, whose
    # host path (with the container's full id) mountinfo would show.
    assert lines[4] == "sandbox ''"


def test_seccomp_refuses_io_uring_and_ptrace(
    runner: DockerRunner, sandboxes: SandboxFactory
) -> None:
    code = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
SYS_io_uring_setup, SYS_ptrace, PTRACE_ATTACH = 425, 101, 16
params = ctypes.create_string_buffer(120)
print(libc.syscall(SYS_io_uring_setup, 1, params), ctypes.get_errno())
print(libc.syscall(SYS_ptrace, PTRACE_ATTACH, 1, 0, 0), ctypes.get_errno())
"""
    lines = run_python(runner, sandboxes, code).splitlines()
    if sandboxes.gvisor:
        # runsc loads no OCI seccomp profile: io_uring_setup reaches gVisor's own io_uring, in its
        # user-space kernel (the host's io_uring is never called, which is what the profile is
        # for), and returns a descriptor. gVisor refuses to trace another uid's process (EPERM).
        assert int(lines[0].split()[0]) >= 0
        assert lines[1] == "-1 1"
        return
    assert lines == ["-1 1", "-1 1"]  # EPERM from the profile, for both


KILL_INIT = {
    "python": """
import os, signal
try:
    os.kill(1, signal.SIGKILL)
    print('SIGNALLED')
except PermissionError:
    print('refused')
print('init still there' if os.path.exists('/proc/1/status') else 'init gone')
""",
    "javascript": """
try {
  process.kill(1, 'SIGKILL');
  console.log('SIGNALLED');
} catch (err) {
  if (err.code !== 'EPERM') throw err;
  console.log('refused');
}
console.log(require('fs').existsSync('/proc/1/status') ? 'init still there' : 'init gone');
""",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_code_cannot_signal_the_keeper(
    runner: DockerRunner, sandboxes: SandboxFactory, language: str
) -> None:
    """Under exec the init and the keeper run as another uid. In a pool member they run as the
    code's (they serve this one run): then the kernel still ignores a kill of its namespace's
    init, and the run goes on."""
    code = KILL_INIT[language]
    if not isinstance(runner, MemberRunner):
        assert run_code(runner, sandboxes, code, language).splitlines() == [
            "refused",
            "init still there",
        ]
        return
    result = runner.run_once(sandboxes.config(language), sandboxes.program(code, language))
    if sandboxes.gvisor:
        # gVisor's kernel lets its init be killed (the kill lands a moment later): the code
        # ended its own sandbox, nothing else.
        assert result.exit_code == 137, result
        assert "SIGNALLED\ninit still there\n".startswith(result.stdout), result  # cut anywhere
    else:
        assert result.stdout.splitlines() == ["SIGNALLED", "init still there"], result
