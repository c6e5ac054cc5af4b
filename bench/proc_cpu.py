"""CPU seconds spent by named process groups, read from /proc, for per-run accounting in benches.

A group is a process tree (a root pid and every live descendant) or every process of a given name.
Each process counts utime + stime plus cutime + cstime, so children that ended and were reaped
inside the tree still count. Short-lived processes reparented outside every group (containerd's
shims, runc) are only in the machine-wide figure, which counts every busy CPU second, anyone's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MACHINE = "machine (all processes)"


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    name: str
    ticks: int  # utime + stime + cutime + cstime


def read_stat(pid: int) -> ProcStat | None:
    """One process's stat line, or None when it has gone meanwhile."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The name is in parentheses and may itself hold spaces or parentheses.
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return ProcStat(
        int(text.split(" ", 1)[0]), int(fields[1]), name, utime + stime + cutime + cstime
    )


def all_stats() -> list[ProcStat]:
    stats = (read_stat(int(entry.name)) for entry in PROC.iterdir() if entry.name.isdigit())
    return [stat for stat in stats if stat is not None]


def cmdline(pid: int) -> list[str]:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except (FileNotFoundError, ProcessLookupError):
        return []


def environ(pid: int) -> dict[str, str]:
    try:
        raw = (PROC / str(pid) / "environ").read_bytes().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return {}
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def children_of(parent: int, stats: Iterable[ProcStat] | None = None) -> list[int]:
    return [stat.pid for stat in (all_stats() if stats is None else stats) if stat.ppid == parent]


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine since boot: every state but idle and iowait."""
    values = [int(value) for value in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


@dataclass(frozen=True)
class Groups:
    """What to count: process trees by root pid, single processes, processes by exact name."""

    trees: Mapping[str, int]
    single: Mapping[str, int]
    names: Mapping[str, str]

    def snapshot(self) -> dict[str, float]:
        """CPU seconds so far of every group, and of the machine, at this instant."""
        stats = all_stats()
        by_parent: dict[int, list[ProcStat]] = {}
        by_pid = {stat.pid: stat for stat in stats}
        for stat in stats:
            by_parent.setdefault(stat.ppid, []).append(stat)
        seconds: dict[str, float] = {}
        for group, root in self.trees.items():
            ticks, pending = 0, [root]
            while pending:
                pid = pending.pop()
                if pid in by_pid:
                    ticks += by_pid[pid].ticks
                pending.extend(child.pid for child in by_parent.get(pid, []))
            seconds[group] = ticks / CLOCK_TICKS
        for group, pid in self.single.items():
            seconds[group] = by_pid[pid].ticks / CLOCK_TICKS if pid in by_pid else 0.0
        for group, name in self.names.items():
            seconds[group] = sum(s.ticks for s in stats if s.name == name) / CLOCK_TICKS
        seconds[MACHINE] = machine_busy_s()
        return seconds


def per_run(before: Mapping[str, float], after: Mapping[str, float], runs: int) -> dict[str, float]:
    """CPU milliseconds per run of each group between two snapshots."""
    return {group: (after[group] - before[group]) * 1000 / max(runs, 1) for group in after}
