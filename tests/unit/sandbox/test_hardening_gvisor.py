"""Under runsc the process limits move into gVisor's kernel; everything else stays as under runc."""

from __future__ import annotations

from typing import Any

from executor_service.sandbox.hardening import (
    GVISOR_HOST_TASKS_BASE,
    GVISOR_HOST_TASKS_PER_PROCESS,
    UID_BASE,
    container_options,
)
from executor_service.sandbox.spec import Limits, SandboxConfig


def options(runtime: str | None) -> dict[str, Any]:
    config = SandboxConfig(image="img:1", limits=Limits(pids=32, cpu_time_s=5), runtime=runtime)
    return container_options(config, deadline=1000.0, code_uid=UID_BASE)


def ulimits(opts: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {item["Name"]: (item["Soft"], item["Hard"]) for item in opts["ulimits"]}


def test_runsc_holds_processes_with_nproc_and_leaves_room_for_gvisor() -> None:
    runc, runsc = options(None), options("runsc")
    assert runsc["runtime"] == "runsc"
    assert ulimits(runsc)["nproc"] == (32, 32)
    assert "nproc" not in ulimits(runc)
    assert runc["pids_limit"] == 32
    assert runsc["pids_limit"] == GVISOR_HOST_TASKS_BASE + GVISOR_HOST_TASKS_PER_PROCESS * 32


def test_runsc_drops_only_the_cpu_time_ulimit() -> None:
    runc, runsc = options(None), options("runsc")
    assert ulimits(runc)["cpu"] == (5, 6)
    assert "cpu" not in ulimits(runsc)
    assert {k: v for k, v in ulimits(runc).items() if k != "cpu"} == {
        k: v for k, v in ulimits(runsc).items() if k != "nproc"
    }
    same = {"pids_limit", "ulimits", "runtime"}
    assert {k: v for k, v in runc.items() if k not in same} == {
        k: v for k, v in runsc.items() if k not in same
    }
