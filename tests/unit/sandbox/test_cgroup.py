"""Reading a container's usage and task count from cgroup files laid out as v1 and v2 engines
lay them."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor_service.sandbox.cgroup import Usage, read_pids, read_usage


@pytest.mark.parametrize("layout", ["pids/docker/abc", "docker/abc"], ids=["v1", "v2"])
def test_the_task_count_is_read_from_either_layout(tmp_path: Path, layout: str) -> None:
    folder = tmp_path / layout
    folder.mkdir(parents=True)
    (folder / "pids.current").write_text("3\n")
    assert read_pids("abc", root=tmp_path) == 3


def test_an_unreadable_count_is_none_so_the_caller_assumes_the_worst(tmp_path: Path) -> None:
    assert read_pids("abc", root=tmp_path) is None
    folder = tmp_path / "pids" / "docker" / "abc"
    folder.mkdir(parents=True)
    (folder / "pids.current").write_text("max\n")
    assert read_pids("abc", root=tmp_path) is None


def _files(folder: Path, contents: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in contents.items():
        (folder / name).write_text(text)


def test_usage_is_read_from_a_v1_layout(tmp_path: Path) -> None:
    _files(tmp_path / "cpuacct/docker/abc", {"cpuacct.usage": "2500000000\n"})
    _files(
        tmp_path / "memory/docker/abc",
        {
            "memory.max_usage_in_bytes": "7340032\n",
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        },
    )
    assert read_usage("abc", root=tmp_path) == Usage(2.5, 7340032, 2)


def test_usage_is_read_from_a_v2_layout(tmp_path: Path) -> None:
    _files(
        tmp_path / "docker/abc",
        {
            "cpu.stat": "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n",
            "memory.peak": "4096\n",
            "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        },
    )
    assert read_usage("abc", root=tmp_path) == Usage(1.5, 4096, 1)


def test_usage_without_memory_files_still_has_cpu_and_no_kills(tmp_path: Path) -> None:
    _files(tmp_path / "cpuacct/docker/abc", {"cpuacct.usage": "1000\n"})
    assert read_usage("abc", root=tmp_path) == Usage(1e-06, None, 0)


def test_no_visible_cgroup_is_none_so_the_caller_asks_the_engine(tmp_path: Path) -> None:
    assert read_usage("abc", root=tmp_path) is None
