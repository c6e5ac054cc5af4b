"""The security posture, read off the options every container is created with."""

from __future__ import annotations

import json

from executor_service.sandbox.hardening import container_options, seccomp_profile
from executor_service.sandbox.spec import Limits, Mount, SandboxConfig


def options(**kw: object) -> dict[str, object]:
    config = SandboxConfig(image="img:1", limits=Limits(memory_mb=128, pids=32), **kw)  # type: ignore[arg-type]
    return container_options(config, deadline=1000.0)


def test_defaults_shut_every_door() -> None:
    opts = options()
    assert opts["network_disabled"] is True
    assert opts["read_only"] is True
    assert opts["cap_drop"] == ["ALL"]
    assert opts["privileged"] is False
    assert opts["user"] == "10002:10001"
    assert opts["init"] is True
    assert opts["ipc_mode"] == "private"
    assert opts["environment"] == {}
    assert opts["mem_limit"] == opts["memswap_limit"] == "128m"
    assert opts["pids_limit"] == 32
    assert "runtime" not in opts
    security = opts["security_opt"]
    assert isinstance(security, list)
    assert "no-new-privileges" in security
    assert not any("unconfined" in item for item in security)
    assert opts["mounts"] == []
    assert "/tmp" in opts["tmpfs"]
    assert "noexec" in opts["tmpfs"]["/tmp"]


def test_seccomp_profile_is_dockers_default_minus_io_uring_and_ptrace() -> None:
    profile = json.loads(seccomp_profile())
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {name for rule in profile["syscalls"] for name in rule["names"]}
    assert {"read", "write", "clone", "execve"} <= allowed
    assert not allowed & {"io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace"}


def test_policy_mounts_are_always_read_only() -> None:
    opts = options(mounts=(Mount(host_path="/srv/data", sandbox_path="/data"),))
    [mount] = opts["mounts"]  # type: ignore[misc]
    assert mount["ReadOnly"] is True
    assert mount["Type"] == "bind"


def test_labels_carry_the_reaper_deadline() -> None:
    labels = options(labels={"agent-sandbox.execution": "ex_1"})["labels"]
    assert labels == {
        "agent-sandbox.execution": "ex_1",
        "agent-sandbox.managed": "1",
        "agent-sandbox.deadline": "1000",
    }
