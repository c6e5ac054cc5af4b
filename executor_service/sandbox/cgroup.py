"""Reading a container's CPU time, peak memory, OOM kills and task count from its cgroup files.

The engine's stats endpoint answers on its own sampling tick (up to a second, even one-shot), which
would double the cost of a short run; the kernel's files answer at once and carry the OOM-kill
counter, which tells a memory kill from a plain SIGKILL. Both cgroup v1 (this engine's cgroupfs
driver) and v2 layouts are read; where neither is visible (the worker itself in a container without
the host's /sys/fs/cgroup), the caller falls back to the stats endpoint (or, for the task count,
to assuming the worst).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Usage:
    cpu_time_s: float
    memory_peak_bytes: int | None
    oom_kills: int


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _field(text: str | None, name: str) -> int | None:
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            return int(value)
    return None


def read_usage(container_id: str, parent: str = "docker", root: Path = ROOT) -> Usage | None:
    """Usage of a running container, or None when its cgroup is not visible from here."""
    cpu_ns = _read(root / "cpuacct" / parent / container_id / "cpuacct.usage")
    if cpu_ns is not None:  # cgroup v1
        memory = root / "memory" / parent / container_id
        peak = _read(memory / "memory.max_usage_in_bytes")
        return Usage(
            cpu_time_s=int(cpu_ns) / 1e9,
            memory_peak_bytes=int(peak) if peak is not None else None,
            oom_kills=_field(_read(memory / "memory.oom_control"), "oom_kill") or 0,
        )
    unified = root / parent / container_id
    cpu_stat = _read(unified / "cpu.stat")
    if cpu_stat is not None:  # cgroup v2
        peak = _read(unified / "memory.peak")
        return Usage(
            cpu_time_s=(_field(cpu_stat, "usage_usec") or 0) / 1e6,
            memory_peak_bytes=int(peak) if peak is not None else None,
            oom_kills=_field(_read(unified / "memory.events"), "oom_kill") or 0,
        )
    return None


def read_pids(container_id: str, parent: str = "docker", root: Path = ROOT) -> int | None:
    """Tasks (processes and threads) in a container's cgroup now, or None when not visible."""
    for path in (
        root / "pids" / parent / container_id / "pids.current",  # cgroup v1
        root / parent / container_id / "pids.current",  # cgroup v2
    ):
        text = _read(path)
        if text is not None:
            try:
                return int(text)
            except ValueError:
                return None
    return None
