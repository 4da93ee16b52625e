"""What a process costs, read from /proc (Linux): CPU seconds, resident memory, threads.

The bench's idle, cost and memory figures come from here rather than from the services'
own metrics, so that they count everything a process does (its threads, its libraries' work,
its garbage collections) and work the same for Rebond and for the bare baselines.
"""

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: /proc/<pid>/stat counts CPU time in clock ticks (100 a second on Linux): over 60 s, 1 % of
#: a core is 60 ticks, so an idle figure is exact to about 0.02 % of a core.
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system, all threads) `pid` has used since it started."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: fields are counted after
    # its closing parenthesis, where field 3 (state) comes first; utime and stime are 14, 15.
    after_name = stat[stat.rindex(")") + 2 :].split()
    return (int(after_name[11]) + int(after_name[12])) / CLOCK_TICKS


@dataclass(frozen=True)
class Memory:
    """A process's resident memory (MB) from /proc/<pid>/status, and its thread count."""

    rss_mb: float
    peak_rss_mb: float  # VmHWM: the highest RSS so far
    anon_mb: float  # its heap, stacks and arenas: what it allocated itself
    file_mb: float  # mapped files: the interpreter's and the extensions' code, shared with others
    threads: int


def memory(pid: int) -> Memory:
    fields: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()[0] if value.split() else ""

    def mb(key: str) -> float:
        return round(int(fields.get(key, "0")) / 1024, 1)

    return Memory(mb("VmRSS"), mb("VmHWM"), mb("RssAnon"), mb("RssFile"), int(fields["Threads"]))


class CpuMeter:
    """CPU used by named processes from its creation to each `read`, in seconds and in percent
    of one core (a process using a whole core for the interval reads 100)."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self.started = time.monotonic()
        self.at_start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def read(self) -> dict[str, dict[str, float]]:
        elapsed = time.monotonic() - self.started
        out = {}
        for name, pid in self.pids.items():
            used = cpu_seconds(pid) - self.at_start[name]
            out[name] = {"cpu_s": round(used, 3), "percent": round(100 * used / elapsed, 3)}
        return out

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


def idle_cpu(pids: Mapping[str, int], seconds: float) -> dict[str, dict[str, float]]:
    """Each process's CPU over `seconds` while the caller sends nothing (`CpuMeter.read`)."""
    meter = CpuMeter(pids)
    time.sleep(seconds)
    return meter.read()
