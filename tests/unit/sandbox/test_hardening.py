"""The security posture, read off the options every container is created with."""

from __future__ import annotations

import json

import pytest

from executor_service.errors import SandboxError
from executor_service.sandbox.hardening import (
    UID_BASE,
    UID_PAIRS,
    code_uid_from_label,
    container_options,
    draw_code_uid,
    seccomp_profile,
)
from executor_service.sandbox.spec import Limits, Mount, SandboxConfig

CODE_UID = UID_BASE + 2 * 12345


def options(**kw: object) -> dict[str, object]:
    config = SandboxConfig(image="img:1", limits=Limits(memory_mb=128, pids=32), **kw)  # type: ignore[arg-type]
    return container_options(config, deadline=1000.0, code_uid=CODE_UID)


def test_defaults_shut_every_door() -> None:
    opts = options()
    assert opts["network_disabled"] is True
    assert opts["read_only"] is True
    assert opts["cap_drop"] == ["ALL"]
    assert opts["privileged"] is False
    assert opts["user"] == f"{CODE_UID + 1}:{CODE_UID + 1}"  # the keeper, never the code
    assert opts["init"] is True
    assert opts["ipc_mode"] == "private"
    assert opts["environment"] == {"USER": "sandbox", "LOGNAME": "sandbox"}  # nothing of the host
    assert opts["mem_limit"] == opts["memswap_limit"] == "128m"
    assert opts["pids_limit"] == 32
    assert "runtime" not in opts
    security = opts["security_opt"]
    assert isinstance(security, list)
    assert "no-new-privileges" in security
    assert not any("unconfined" in item for item in security)
    assert opts["mounts"] == [
        {"Type": "bind", "Source": "/dev/null", "Target": "/etc/hostname", "ReadOnly": True}
    ]
    assert "/tmp" in opts["tmpfs"]
    assert "noexec" in opts["tmpfs"]["/tmp"]


def test_the_workspace_and_tmp_belong_to_the_sandboxs_own_uid() -> None:
    tmpfs = options()["tmpfs"]
    assert isinstance(tmpfs, dict)
    for path in ("/workspace", "/tmp"):
        assert f"uid={CODE_UID}," in tmpfs[path]
        assert f"gid={CODE_UID}," in tmpfs[path]


def test_uids_are_drawn_in_pairs_from_a_range_far_above_host_users() -> None:
    drawn = {draw_code_uid() for _ in range(2000)}
    assert len(drawn) > 1990  # 2**28 pairs: a repeat among 2,000 draws is a 1-in-130 event
    for uid in drawn:
        assert UID_BASE <= uid < UID_BASE + 2 * UID_PAIRS
        assert uid % 2 == 0  # the keeper's is uid + 1, never another sandbox's code uid
    assert UID_BASE + 2 * UID_PAIRS <= 2**31 - 1  # runc refuses larger uids


def test_a_uid_label_is_read_back_only_when_it_is_one_we_draw() -> None:
    assert code_uid_from_label(str(CODE_UID)) == CODE_UID
    for bad in (None, "", "10001", str(CODE_UID + 1), "-5", "x", str(UID_BASE + 2 * UID_PAIRS)):
        with pytest.raises(SandboxError):
            code_uid_from_label(bad)


def test_seccomp_profile_is_dockers_default_minus_io_uring_and_ptrace() -> None:
    profile = json.loads(seccomp_profile())
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {name for rule in profile["syscalls"] for name in rule["names"]}
    assert {"read", "write", "clone", "execve"} <= allowed
    assert not allowed & {"io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace"}


def test_policy_mounts_are_always_read_only() -> None:
    opts = options(mounts=(Mount(host_path="/srv/data", sandbox_path="/data"),))
    [mount, _hostname] = opts["mounts"]  # type: ignore[misc]
    assert mount["ReadOnly"] is True
    assert mount["Type"] == "bind"


def test_labels_carry_the_instance_and_the_reaper_deadline() -> None:
    labels = options(labels={"agent-sandbox.execution": "ex_1"})["labels"]
    assert labels == {
        "agent-sandbox.execution": "ex_1",
        "agent-sandbox.managed": "default",
        "agent-sandbox.deadline": "1000",
        "agent-sandbox.uid": str(CODE_UID),
    }
