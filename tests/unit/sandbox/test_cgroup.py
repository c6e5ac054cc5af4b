"""Reading a container's task count from cgroup files laid out as v1 and v2 engines lay them."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor_service.sandbox.cgroup import read_pids


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
