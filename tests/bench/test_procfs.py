"""The bench's /proc readers see what a process really spends.

The idle target (at most 1 % of a core) and the cost per questionnaire are read from
/proc/<pid>/stat; a reader that missed a thread's time or misparsed the line would call a
busy service idle. The child here burns a known amount of CPU on request, so the checks hold
however loaded the machine is: CPU time is counted, not wall time.
"""

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from bench.procfs import CpuMeter, cpu_seconds, memory

CHILD = r"""
import sys, threading, time
from pathlib import Path
Path("/proc/self/comm").write_text("bench x) (y")  # a name with spaces and parentheses
def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
print("ready", flush=True)
for line in sys.stdin:
    command, value = line.split()
    if command == "burn":  # in a second thread: the process's time counts every thread
        thread = threading.Thread(target=burn, args=(float(value),))
        thread.start()
        thread.join()
    elif command == "hold":  # touch that many MB and keep them
        kept = b"x" * (int(value) << 20)
    print("done", flush=True)
"""


class Child:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout and self.process.stdout.readline() == "ready\n"

    def ask(self, command: str, value: float) -> None:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(f"{command} {value}\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline() == "done\n"


@pytest.fixture
def child() -> Iterator[Child]:
    process = Child()
    try:
        yield process
    finally:
        process.process.kill()
        process.process.wait()


def test_a_busy_process_reads_as_busy(child: Child) -> None:
    """0.5 s of CPU burnt in a thread reads as 0.5 s (to two clock ticks and the commands)."""
    meter = CpuMeter({"child": child.process.pid})
    child.ask("burn", 0.5)
    used = meter.read()["child"]
    assert used["cpu_s"] == pytest.approx(0.5, abs=0.05)
    assert used["percent"] > 0


def test_an_idle_process_reads_as_idle(child: Child) -> None:
    """A process waiting on its input for 1 s uses (almost) no CPU."""
    before = cpu_seconds(child.process.pid)
    meter = CpuMeter({"child": child.process.pid})
    time.sleep(1)
    assert meter.read()["child"]["percent"] <= 2.0
    assert cpu_seconds(child.process.pid) - before <= 0.02


def test_memory_reads_what_the_process_holds(child: Child) -> None:
    """60 MB touched and kept show in the resident set, as the process's own (anonymous)."""
    before = memory(child.process.pid)
    child.ask("hold", 60)
    after = memory(child.process.pid)
    assert after.rss_mb - before.rss_mb >= 55
    assert after.anon_mb - before.anon_mb >= 55
    assert after.peak_rss_mb >= after.rss_mb
    assert after.threads == 1
