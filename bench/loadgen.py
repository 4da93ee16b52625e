"""Open-loop HTTP load for Rebond's benchmarks (asyncio, aiohttp): the bench's load generator.

    python loadgen.py --url http://127.0.0.1:8000/v1/submissions --rate 20 --seconds 60 \
        --arrivals poisson --seed 3 --bodies bodies.json --out results.csv

Requests leave on a schedule decided beforehand (`arrivals.schedule`: evenly spaced or
Poisson), whatever the server does: a slow reply delays no later request (open loop). Each
latency is counted from the request's *scheduled* send time, not from when it actually left,
so a request the generator itself sent late, or that queued behind others, counts that delay.
How late each one left is written too (`lag_us`): it says how much of a latency is the
generator's own and is what the bench checks against the Go generator it replaced
(`loadgen_compare.py`). With `--idempotency-keys` every request carries its own
Idempotency-Key, as the portal's do.

Writes one CSV line per request: scheduled_unix_ns, latency_us, status (0: no reply),
reference, lag_us; and prints one JSON line of totals (requests, this process's CPU seconds).
"""

import argparse
import asyncio
import csv
import gc
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import aiohttp
import uvloop

from bench.arrivals import Arrivals, schedule

#: Between building the schedule and its first request: the session and its first connection.
LEAD_NS = 50_000_000


@dataclass(frozen=True)
class Sent:
    """One request: when it was due, how long until its reply was read whole, from that time."""

    scheduled_unix_ns: int
    latency_us: int
    status: int
    reference: str
    lag_us: int  # how late it left: the generator's own delay, part of `latency_us`


COLUMNS = [f.name for f in fields(Sent)]


async def open_loop(
    url: str,
    times_ns: Sequence[int],
    bodies: Sequence[bytes],
    *,
    keyed: bool = False,
    timeout_s: float = 10.0,
    max_in_flight: int = 10_000,
) -> list[Sent]:
    """POST `bodies` in turn to `url`, request i at `times_ns[i]` after the start."""
    loop = asyncio.get_running_loop()
    run = time.time_ns()
    results: list[Sent | None] = [None] * len(times_ns)
    connector = aiohttp.TCPConnector(limit=max_in_flight, limit_per_host=max_in_flight)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def send(i: int, due_ns: int, wall_ns: int) -> None:
            lag_ns = time.monotonic_ns() - due_ns
            headers = {"content-type": "application/json"}
            if keyed:
                headers["idempotency-key"] = f"bench-{run:x}-{i}"
            status, reference = 0, ""
            try:
                async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as r:
                    payload = await r.read()
                    status = r.status
            except (aiohttp.ClientError, TimeoutError):
                pass  # no reply: status 0, its latency the time until it failed
            else:
                if status == 202:
                    reference = json.loads(payload).get("reference", "")
            latency_ns = time.monotonic_ns() - due_ns
            results[i] = Sent(wall_ns, latency_ns // 1000, status, reference, lag_ns // 1000)

        tasks: set[asyncio.Task[None]] = set()
        start_ns = time.monotonic_ns() + LEAD_NS
        start_wall_ns = time.time_ns() + LEAD_NS
        for i, offset in enumerate(times_ns):
            due = start_ns + offset
            # uvloop's timers count whole milliseconds and may wake up to one early: sleep
            # again until the time has come, never send early. A late wake is counted in the
            # latency and reported as lag.
            while (delay := due - time.monotonic_ns()) > 0:  # noqa: ASYNC110 - a timer
                await asyncio.sleep(delay / 1e9)
            task = loop.create_task(send(i, due, start_wall_ns + offset))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks:
            await asyncio.gather(*tasks)
    return [r for r in results if r is not None]


def write_csv(rows: Sequence[Sent], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(astuple(r) for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="target URL (POST)")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, required=True, help="how long to send")
    parser.add_argument("--arrivals", type=Arrivals, default=Arrivals.EVEN, choices=list(Arrivals))
    parser.add_argument("--seed", type=int, default=1, help="of the Poisson schedule")
    parser.add_argument("--bodies", type=Path, required=True, help="JSON array of bodies")
    parser.add_argument("--out", type=Path, required=True, help="CSV written here")
    parser.add_argument("--idempotency-keys", action="store_true")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--max-in-flight", type=int, default=10_000)
    args = parser.parse_args()
    bodies = [json.dumps(b).encode() for b in json.loads(args.bodies.read_text())]
    if not bodies:
        parser.error("--bodies must hold a non-empty JSON array")
    times = schedule(args.arrivals, args.rate, args.seconds, args.seed)
    # Nothing made here lives shorter than the run: a collection would only pause the sends.
    gc.freeze()
    gc.disable()
    cpu = time.process_time()
    rows = uvloop.run(
        open_loop(
            args.url,
            times,
            bodies,
            keyed=args.idempotency_keys,
            timeout_s=args.timeout,
            max_in_flight=args.max_in_flight,
        )
    )
    cpu = time.process_time() - cpu
    write_csv(rows, args.out)
    lags = sorted(r.lag_us for r in rows)
    summary = {
        "requests": len(rows),
        "cpu_s": round(cpu, 3),
        "lag_p50_us": statistics.median(lags) if lags else None,
        "lag_max_us": lags[-1] if lags else None,
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
