"""`make soak`: a steady load (100 submissions/s for 10 minutes) through the whole pipeline.

Reports each service's memory growth (RSS sampled every 10 s: first minute vs last minute) and
the errors seen: non-202 replies, requests that failed, and records on the dead-letter topics.
Writes bench/results/soak.json and prints a summary. `--minutes` and `--rate` change the load.
`make bench` runs a shorter soak (`soak`) on its own Rebond, to report memory after it.
"""

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from bench.procfs import memory
from bench.run import RESULTS, Bench, Proc, local_kafka, open_loop, questionnaires
from rebond_contracts.topics import Service, dead_letters


async def _count_dead_letters(bootstrap: str) -> int:
    topics = [dead_letters(s).name for s in Service if s is not Service.ASSOCIATION]
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        total = 0
        while batches := await consumer.getmany(timeout_ms=2000):
            total += sum(len(records) for records in batches.values())
        return total
    finally:
        await consumer.stop()


def soak(
    bench: Bench, procs: Sequence[Proc], url: str, rate: int, minutes: float, bodies: Path
) -> dict[str, Any]:
    """`rate` submissions/s to intake at `url` for `minutes`: each of `procs`' resident memory
    sampled every 10 s (first minute against last), the replies, and the dead letters."""
    samples: dict[str, list[tuple[float, float]]] = {}
    stop = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not stop.wait(10):
            for proc in procs:
                samples.setdefault(proc.name, []).append(
                    (time.monotonic() - started, memory(proc.process.pid).rss_mb)
                )

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        rows = open_loop(bench, url, rate, minutes * 60, bodies)
    finally:
        stop.set()
        sampler.join()
    dead = asyncio.run(_count_dead_letters(bench.bootstrap))
    window = 60.0
    growth = {}
    for name, points in samples.items():
        first = [rss for t, rss in points if t <= window] or [points[0][1]]
        last = [rss for t, rss in points if t >= points[-1][0] - window] or [points[-1][1]]
        growth[name] = {
            "first_minute_mb": round(statistics.mean(first), 1),
            "last_minute_mb": round(statistics.mean(last), 1),
            "growth_mb": round(statistics.mean(last) - statistics.mean(first), 1),
            "peak_mb": round(max(rss for _, rss in points), 1),
        }
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[str(row["status"])] = statuses.get(str(row["status"]), 0) + 1
    return {
        "rate": rate,
        "minutes": minutes,
        "requests": len(rows),
        "statuses": statuses,
        "errors": len(rows) - statuses.get("202", 0),
        "dead_letters": dead,
        "memory": growth,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=100)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="rebond-soak-"))
    bodies = workdir / "bodies.json"
    bodies.write_text(json.dumps(questionnaires(500)))
    with local_kafka() as broker:
        bench = Bench(broker.bootstrap, workdir, quick=False)
        tag = uuid.uuid4().hex[:6]
        procs = [
            bench.service("intake", rate_limit_per_minute="0"),
            bench.service("router", group_id=f"rebond-router.soak-{tag}"),
            bench.service("notifier", group_id=f"rebond-notifier.soak-{tag}"),
            bench.service("events", group_id=f"rebond-events.soak-{tag}"),
        ]
        try:
            assert procs[0].url
            soaked = soak(bench, procs, procs[0].url, args.rate, args.minutes, bodies)
        finally:
            for proc in procs:
                bench.stop(proc)
    result = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **soaked}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
