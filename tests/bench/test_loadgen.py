"""The bench's load generators count each latency from the request's scheduled send time.

A generator that timed requests from when they actually left would hide the time they waited
behind slow replies (coordinated omission): the latency it reports would stay flat while the
server fell behind. Here each reply takes 100 ms and only one request may be in flight, so
request k cannot leave before the k replies ahead of it; its latency from its scheduled time is
at least 100 ms x (k + 1) minus its place in the schedule. Both generators are checked: the Go
one `make bench` uses, and the Python one it was measured against (loadgen_compare.py).
"""

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import uvloop

from bench.arrivals import Arrivals, schedule
from bench.loadgen import open_loop
from bench.run import load_rows, loadgen_binary

REPLY_S = 0.1
RATE = 50  # a request every 20 ms, five times faster than the server answers
COUNT = 6


class SlowServer(BaseHTTPRequestHandler):
    """Answers every POST after REPLY_S with a 202 and a reference."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        time.sleep(REPLY_S)
        body = json.dumps({"reference": f"RB-{time.monotonic_ns()}"}).encode()
        self.send_response(202)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def slow_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowServer)
    # `shutdown()` waits for the loop's next look, every `poll_interval` (0.5 s by default)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/submissions"
    finally:
        server.shutdown()
        thread.join()


def _go(url: str, times: list[int], tmp_path: Path) -> list[dict[str, float]]:
    (tmp_path / "schedule").write_text("\n".join(map(str, times)) + "\n")
    (tmp_path / "bodies.json").write_text('[{"a": 1}]')
    subprocess.run(
        [loadgen_binary(), "-url", url, "-schedule", str(tmp_path / "schedule"),
         "-bodies", str(tmp_path / "bodies.json"), "-out", str(tmp_path / "out.csv"),
         "-max-in-flight", "1"],
        check=True, timeout=60,
    )  # fmt: skip
    return load_rows(tmp_path / "out.csv")


def _python(url: str, times: list[int], tmp_path: Path) -> list[dict[str, float]]:
    sent = uvloop.run(open_loop(url, times, [b'{"a": 1}'], max_in_flight=1))
    return [
        {"scheduled_ns": s.scheduled_unix_ns, "latency_ms": s.latency_us / 1000,
         "status": s.status, "lag_ms": s.lag_us / 1000}
        for s in sent
    ]  # fmt: skip


Generator = Callable[[str, list[int], Path], list[dict[str, float]]]


@pytest.fixture(params=["go", "python"])
def generate(request: pytest.FixtureRequest) -> Generator:
    if request.param == "go":
        request.getfixturevalue("go_toolchain")
        return _go
    return _python


def test_latency_counts_the_wait_behind_earlier_replies_from_the_scheduled_time(
    generate: Generator, slow_url: str, tmp_path: Path
) -> None:
    """Request k's latency is at least (k + 1) replies minus its scheduled offset."""
    times = schedule(Arrivals.EVEN, RATE, COUNT / RATE)
    rows = generate(slow_url, times, tmp_path)
    assert [r["status"] for r in rows] == [202] * COUNT
    for k, row in enumerate(rows):
        floor_ms = 1000 * (REPLY_S * (k + 1) - k / RATE)
        assert row["latency_ms"] >= floor_ms - 2, (k, row)
    # the last one waited for five replies ahead of it: far more than its own 100 ms
    assert rows[-1]["latency_ms"] > 4 * 1000 * REPLY_S


def test_requests_are_due_on_the_schedule_whatever_the_server_does(
    generate: Generator, slow_url: str, tmp_path: Path
) -> None:
    """The scheduled times written are the schedule's, not when the slow server let them go."""
    times = schedule(Arrivals.POISSON, RATE, 0.2, seed=5)
    rows = generate(slow_url, times, tmp_path)
    first = rows[0]["scheduled_ns"]
    assert [r["scheduled_ns"] - first for r in rows] == [t - times[0] for t in times]
    assert all(r["lag_ms"] >= 0 for r in rows)  # never sent before its time
