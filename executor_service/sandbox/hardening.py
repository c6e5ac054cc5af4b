"""The container configuration every sandbox gets: the security posture, in one readable place.

Pure data in, keyword arguments for docker-py's `containers.create` out, so the posture can be read
and unit-tested without an engine. Nothing here may be loosened by a request: only limits (which a
policy bounds) and the policy's own read-only mounts and runtime reach it.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from executor_service.sandbox.runner import DEADLINE_LABEL, MANAGED_LABEL
from executor_service.sandbox.spec import SandboxConfig

WORKSPACE = "/workspace"
# The code runs as CODE_USER; the idle process that keeps a prepared container alive runs as
# KEEPER_USER, so code cannot signal or trace it (and `kill -1` after a timeout spares it).
CODE_USER = "10001:10001"
KEEPER_USER = "10002:10001"
CODE_UID = 10001
KEEPER_COMMAND = ["sleep", "infinity"]
HOSTNAME = "sandbox"
MIB = 1024 * 1024


@cache
def seccomp_profile() -> str:
    """Docker's default profile minus io_uring and ptrace (see scripts/derive_seccomp_profile.py).

    docker-py wants the profile's JSON text in security_opt; a path makes the engine answer 500.
    """
    text = resources.files("executor_service.sandbox").joinpath("seccomp.json").read_text()
    return json.dumps(json.loads(text), separators=(",", ":"))


def container_options(config: SandboxConfig, *, deadline: float) -> dict[str, Any]:
    """Keyword arguments for `containers.create`, with every hardening default applied."""
    limits = config.limits
    memory = f"{limits.memory_mb}m"
    workspace_bytes = limits.workspace_mb * MIB
    labels = {
        **config.labels,
        MANAGED_LABEL: "1",
        DEADLINE_LABEL: f"{deadline:.0f}",
    }
    options: dict[str, Any] = {
        "image": config.image,
        "command": KEEPER_COMMAND,
        "user": KEEPER_USER,
        "working_dir": WORKSPACE,
        "hostname": HOSTNAME,
        "labels": labels,
        "environment": {},  # only the image's own variables; nothing of the host's
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
            WORKSPACE: f"rw,exec,nosuid,nodev,size={limits.workspace_mb}m,uid={CODE_UID},"
            f"gid={CODE_UID},mode=0755",
            "/tmp": f"rw,noexec,nosuid,nodev,size={limits.tmp_mb}m,mode=1777",  # noqa: S108 (inside the sandbox)
        },
        "mounts": [
            {
                "Type": "bind",
                "Source": mount.host_path,
                "Target": mount.sandbox_path,
                "ReadOnly": True,
                "BindOptions": {"Propagation": "rprivate"},
            }
            for mount in config.mounts
        ],
        "log_config": {"Type": "none", "Config": {}},  # output travels over exec, never to disk
    }
    if config.runtime is not None:
        options["runtime"] = config.runtime
    return options
