"""The container configuration every sandbox gets: the security posture, in one readable place.

Pure data in, keyword arguments for docker-py's `containers.create` out, so the posture can be read
and unit-tested without an engine. Nothing here may be loosened by a request: only limits (which a
policy bounds) and the policy's own read-only mounts and runtime reach it.

What the sandbox still learns of the host through `/proc/self/mountinfo` under runc, which no
option of the engine can hide: the root filesystem's overlay options (lowerdir, upperdir and
workdir under the engine's data root, e.g. /var/lib/docker/overlay2/...), the engine's init binary
(e.g. /usr/bin/tini-static at /usr/sbin/docker-init), and for every policy mount the host path of
its source within the host filesystem that holds it (the kernel shows a bind mount's root as that
path; a symlink does not help, the kernel shows its target). A policy hides its data's path only by
giving the data a filesystem of its own (then "/" shows) or a neutral name. The engine's own
per-container /etc/hostname (/var/lib/docker/containers/<id>/hostname) is replaced by /dev/null.
Under gVisor the sentry writes mountinfo itself and none of these paths appear.
"""

from __future__ import annotations

import json
import secrets
from functools import cache
from importlib import resources
from typing import Any

from executor_service.errors import SandboxError
from executor_service.sandbox.launcher import LAUNCHER, LAUNCHER_COMMAND
from executor_service.sandbox.runner import DEADLINE_LABEL, MANAGED_LABEL, UID_LABEL
from executor_service.sandbox.spec import SandboxConfig

WORKSPACE = "/workspace"
# Every sandbox gets a uid of its own, so per-user kernel limits (inotify instances and watches,
# RLIMIT_NPROC, user namespaces, POSIX message queue bytes) are per sandbox, not shared by every
# tenant. The code runs as an even uid drawn at random from UID_PAIRS pairs above UID_BASE (far
# above host users and the usual subordinate-uid ranges, below runc's limit of 2**31 - 1); the idle
# process that keeps a prepared container alive runs as the odd uid just above it, so the code
# cannot signal or trace it and `kill -KILL -1` after a timeout spares it. Two sandboxes share a
# uid only if their draws are equal: with n live sandboxes on one engine that is about
# n * n / 2**29 (2e-5 for 100, 2e-3 for 1,000), and such a pair only shares those limits again
# (their processes are in separate pid namespaces). Nothing inside can change uid (no capabilities,
# no-new-privileges). The uids have no passwd entry: the images set HOME (the workspace) and
# MPLCONFIGDIR (under /tmp), and USER_ENVIRONMENT names a user for programs that ask (getpass).
UID_BASE = 1 << 30
UID_PAIRS = 1 << 28
USER_ENVIRONMENT = {"USER": "sandbox", "LOGNAME": "sandbox"}
KEEPER_COMMAND = ["sleep", "infinity"]
# Egress. A sandbox never gets a network interface or a route; one that may reach an allowlist
# gets its proxy directory (the worker's proxy listens on EGRESS_SOCKET in it) mounted read-only,
# and its keeper is a relay instead of `sleep`: socat on the sandbox's own loopback, one child per
# connection, running as the keeper's uid so the code can neither kill nor replace it. Programs
# find it through the usual proxy variables; there is no DNS inside (the proxy resolves names).
EGRESS_MOUNT = "/run/egress"
EGRESS_SOCKET = "proxy.sock"
RELAY_PORT = 3128
RELAY_COMMAND = [
    "socat",
    f"TCP-LISTEN:{RELAY_PORT},bind=127.0.0.1,reuseaddr,fork",
    f"UNIX-CONNECT:{EGRESS_MOUNT}/{EGRESS_SOCKET}",
]
PROXY_URL = f"http://127.0.0.1:{RELAY_PORT}"
PROXY_ENVIRONMENT = {
    **{name: PROXY_URL for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
    # The sandbox's own servers (a test server on loopback) stay reachable without the proxy.
    **{name: "localhost,127.0.0.1,::1" for name in ("NO_PROXY", "no_proxy")},
}
HOSTNAME = "sandbox"
MIB = 1024 * 1024


def draw_code_uid() -> int:
    """A fresh random uid for one sandbox's code (its keeper's is the next one)."""
    return UID_BASE + 2 * secrets.randbelow(UID_PAIRS)


def keeper_uid(code_uid: int) -> int:
    return code_uid + 1


def user(uid: int) -> str:
    """The "uid:gid" docker wants: each sandbox's uids are their own groups too."""
    return f"{uid}:{uid}"


def code_uid_from_label(value: str | None) -> int:
    """The code's uid as the container's label records it, checked to be one we draw."""
    if value is not None and value.isdigit():
        uid = int(value)
        if UID_BASE <= uid < UID_BASE + 2 * UID_PAIRS and uid % 2 == 0:
            return uid
    raise SandboxError(f"sandbox has no valid {UID_LABEL} label: {value!r}")


@cache
def seccomp_profile() -> str:
    """Docker's default profile minus io_uring and ptrace (see scripts/derive_seccomp_profile.py).

    docker-py wants the profile's JSON text in security_opt; a path makes the engine answer 500.
    """
    text = resources.files("executor_service.sandbox").joinpath("seccomp.json").read_text()
    return json.dumps(json.loads(text), separators=(",", ":"))


def container_options(
    config: SandboxConfig,
    *,
    deadline: float,
    code_uid: int,
    instance: str = "default",
    launcher: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for `containers.create`, with every hardening default applied.

    `code_uid` (from `draw_code_uid`) owns the workspace and /tmp and is recorded in a label, so
    a handle rebuilt from the container id alone can learn whom to run the code as. With
    `launcher`, the main process is the pool's launcher (see launcher.py) instead of the keeper:
    it runs as the code's uid (it only ever runs this sandbox's one job) and reads that job from
    the container's stdin, which stays open for it (the job says how long it is) until the one
    attached client lets go: the launcher then exits, and with it the container.
    """
    limits = config.limits
    memory = f"{limits.memory_mb}m"
    workspace_bytes = limits.workspace_mb * MIB
    labels = {
        **config.labels,
        MANAGED_LABEL: instance,
        DEADLINE_LABEL: f"{deadline:.0f}",
        UID_LABEL: str(code_uid),
    }
    mounts = [
        {
            "Type": "bind",
            "Source": mount.host_path,
            "Target": mount.sandbox_path,
            "ReadOnly": True,
            "BindOptions": {"Propagation": "rprivate"},
        }
        for mount in config.mounts
    ]
    # Otherwise the engine bind-mounts its own file, whose host path (the data root and the
    # container's full id) mountinfo shows under runc; the hostname comes from uname, not this.
    mounts.append(
        {"Type": "bind", "Source": "/dev/null", "Target": "/etc/hostname", "ReadOnly": True}
    )
    environment = dict(USER_ENVIRONMENT)
    if config.egress_dir is not None:
        mounts.append(
            {
                "Type": "bind",
                "Source": config.egress_dir,
                "Target": EGRESS_MOUNT,
                "ReadOnly": True,
                "BindOptions": {"Propagation": "rprivate"},
            }
        )
        environment.update(PROXY_ENVIRONMENT)
    options: dict[str, Any] = {
        "image": config.image,
        "command": KEEPER_COMMAND if config.egress_dir is None else RELAY_COMMAND,
        "user": user(keeper_uid(code_uid)),
        "stdin_open": False,
        "working_dir": WORKSPACE,
        "hostname": HOSTNAME,
        "labels": labels,
        # Only the image's variables (HOME, MPLCONFIGDIR, ...), a user name for programs that
        # ask for one (getpass: the drawn uids have no passwd entry), and the relay's address
        # when the sandbox has egress. Nothing of the host's.
        "environment": environment,
        "detach": True,
        "init": True,
        # No network: no interface but loopback, no route, no resolv.conf from the host. Cheaper
        # than network_mode="none" (the engine skips its network set-up altogether).
        "network_disabled": True,
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges", f"seccomp={seccomp_profile()}"],
        "privileged": False,
        "ipc_mode": "private",
        "cgroupns": "private",
        "pids_limit": limits.pids,
        "mem_limit": memory,
        "memswap_limit": memory,  # no swap: Docker's default would be twice the memory
        "mem_swappiness": 0,
        "nano_cpus": int(limits.cpus * 1e9),
        "shm_size": f"{limits.tmp_mb}m",
        "ulimits": [
            {"Name": "nofile", "Soft": limits.nofile, "Hard": limits.nofile},
            {"Name": "fsize", "Soft": workspace_bytes, "Hard": workspace_bytes},
            {"Name": "core", "Soft": 0, "Hard": 0},
            {"Name": "cpu", "Soft": limits.cpu_time_s, "Hard": limits.cpu_time_s + 1},
        ],
        # tmpfs pages count against the memory limit, so these also bound disk use.
        "tmpfs": {
            WORKSPACE: f"rw,exec,nosuid,nodev,size={limits.workspace_mb}m,uid={code_uid},"
            f"gid={code_uid},mode=0755",
            "/tmp": f"rw,noexec,nosuid,nodev,size={limits.tmp_mb}m,uid={code_uid},"  # noqa: S108 (inside the sandbox)
            f"gid={code_uid},mode=1777",
        },
        "mounts": mounts,
        "log_config": {"Type": "none", "Config": {}},  # output travels over exec, never to disk
    }
    if config.name is not None:
        options["name"] = config.name
    if launcher:
        options.update(
            command=[LAUNCHER_COMMAND, "-c", LAUNCHER],
            user=user(code_uid),
            stdin_open=True,
            stdin_once=True,  # the worker's attach closing is the launcher's end of stdin
        )
    if config.runtime is not None:
        options["runtime"] = config.runtime
    if config.runtime == "runsc":
        options.update(gvisor_options(limits.pids, options["ulimits"]))
    return options


# gVisor (runsc, ptrace platform) runs every process of the code as several host tasks: an idle
# sandbox takes ~40 of the container's pids, each process 5 to 15 more (more under load). When the
# container's pids limit is reached, gVisor's own kernel cannot make a thread and the whole sandbox
# dies (exit 2) instead of the fork failing. So under runsc the code's process count is held inside
# gVisor by RLIMIT_NPROC, which gVisor's kernel (the sandbox's own) enforces, and the host's pids
# limit becomes a backstop sized for gVisor's tasks.
GVISOR_HOST_TASKS_BASE = 64
GVISOR_HOST_TASKS_PER_PROCESS = 16


def gvisor_options(pids: int, ulimits: list[dict[str, Any]]) -> dict[str, Any]:
    """What runsc needs instead: `pids` as RLIMIT_NPROC, host room for gVisor, no RLIMIT_CPU.

    RLIMIT_CPU does not bound the code under gVisor, and a spinning program under it sometimes
    took the whole sandbox down after a few seconds; the wall-clock kill is what holds.
    """
    return {
        "pids_limit": GVISOR_HOST_TASKS_BASE + GVISOR_HOST_TASKS_PER_PROCESS * pids,
        "ulimits": [
            *(item for item in ulimits if item["Name"] != "cpu"),
            {"Name": "nproc", "Soft": pids, "Hard": pids},
        ],
    }
