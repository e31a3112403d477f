"""Where the CPU went during a load run: CPU seconds per process group, read from /proc (Linux only, no psutil).

A group is named by its root process ids (and takes in their descendants), or, for PostgreSQL, by the database:
every backend whose title (`postgres: user database host(port) state`) names it. A sampler thread reads each
process's utime + stime every ``interval_s``; a process that appears during the run counts from zero, and one that
exits counts up to its last sample (what it used after that, at most ``interval_s``, is missed). The whole machine's
busy time (/proc/stat) is read at both ends too, so a report can set what these groups used against what other
work on the machine took meanwhile.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a live process; None once it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: the fields that follow start after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def process_title(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def postgres_backends(database: str) -> set[int]:
    """The PostgreSQL backends serving ``database`` (by their process title)."""
    found = set()
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            title = process_title(int(entry.name))
            if title.startswith("postgres: ") and f" {database} " in f"{title} ":
                found.add(int(entry.name))
    return found


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores together."""
    values = [int(v) for v in (PROC / "stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, which user time already counts
    return (total - idle) / TICKS_PER_S, total / TICKS_PER_S


@dataclass
class CpuAccount:
    """CPU seconds used by each group between ``start`` and ``stop``."""

    roots: Mapping[str, Iterable[int]]
    postgres_database: str | None = None
    interval_s: float = 1.0
    used_s: dict[str, float] = field(default_factory=dict)
    machine_busy_s: float = 0.0
    machine_total_s: float = 0.0
    wall_s: float = 0.0
    _first: dict[int, float] = field(default_factory=dict)
    _last: dict[int, float] = field(default_factory=dict)
    _group_of: dict[int, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self, first: bool = False) -> None:
        parents: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for entry in PROC.iterdir():
            if entry.name.isdigit() and (found := process_cpu_s(int(entry.name))) is not None:
                parents[int(entry.name)], cpu[int(entry.name)] = found
        roots = {pid: name for name, pids in self.roots.items() for pid in pids}
        groups: dict[int, str] = {}
        for pid in cpu:  # a root's descendants belong to its group
            ancestor: int | None = pid
            while ancestor and ancestor not in roots:
                ancestor = parents.get(ancestor)
            if ancestor:
                groups[pid] = roots[ancestor]
        if self.postgres_database:
            for pid in postgres_backends(self.postgres_database):
                groups.setdefault(pid, "PostgreSQL backends")
        for pid, name in groups.items():
            if pid not in cpu:
                continue
            self._group_of[pid] = name
            # A process seen first after the start began during the run: it counts from zero.
            self._first.setdefault(pid, cpu[pid] if first else 0.0)
            self._last[pid] = cpu[pid]

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> CpuAccount:
        self._busy0, self._total0 = machine_busy_s()
        self._wall0 = time.monotonic()
        self._sample(first=True)
        self._thread = threading.Thread(target=self._loop, name="cpu-account", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> CpuAccount:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        busy, total = machine_busy_s()
        self.machine_busy_s, self.machine_total_s = busy - self._busy0, total - self._total0
        self.wall_s = time.monotonic() - self._wall0
        self.used_s = {}
        for pid, name in self._group_of.items():
            self.used_s[name] = self.used_s.get(name, 0.0) + self._last[pid] - self._first[pid]
        return self

    def report(self) -> str:
        ours = sum(self.used_s.values())
        cores = self.machine_total_s / self.wall_s if self.wall_s else float("nan")
        parts = [f"{name} {seconds:.1f} s" for name, seconds in sorted(self.used_s.items())]
        parts.append(f"other work on the machine {max(0.0, self.machine_busy_s - ours):.1f} s")
        return (
            f"  CPU seconds in {self.wall_s:.1f} s on {cores:.1f} cores ({self.machine_total_s:.0f} core-s, "
            f"{self.machine_busy_s:.0f} busy): " + ", ".join(parts)
        )
