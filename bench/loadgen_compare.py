"""Is the Python load generator as accurate as the Go one it replaces? Both on the same target.

    uv run python bench/loadgen_compare.py [--quick]      (needs Go, unlike `make bench`)

Starts a broker and the FastAPI floor (`bare_pipeline.py front`: validation and a Kafka
publish, the fastest target the bench has, so the one where a generator's own delays weigh
most), then at each rate sends the same Poisson schedule with `loadgen.py` and with the Go
generator (`loadgen/main.go`), in the order Go, Python, Python, Go, so that drift in the
machine falls on both alike. For each run: the target's latency (p50, p99) as each generator
measures it from the scheduled send times, how late the generator let requests leave (lag),
and the generator's own CPU (from `wait4`'s resource usage), which it takes from the target on
a small machine. Writes bench/results/loadgen_compare.json and prints a table.
"""

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.arrivals import Arrivals, schedule
from bench.run import (
    FLOOR_TOPIC,
    HERE,
    RESULTS,
    Bench,
    load_rows,
    loadgen_binary,
    local_kafka,
    percentile,
    questionnaires,
)
from rebond_testing import free_port

RATES = (1, 20, 100, 200, 500)


def timed(command: list[str]) -> float:
    """Runs `command`; its CPU seconds (user and system, from `wait4`)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command[0]} failed")
    return usage.ru_utime + usage.ru_stime


def one_run(
    generator: str, go: str, url: str, times_path: Path, rate: float, seconds: float, bodies: Path,
    out: Path, seed: int,
) -> dict[str, Any]:  # fmt: skip
    if generator == "go":
        command = [go, "-url", url, "-schedule", str(times_path), "-bodies", str(bodies),
                   "-out", str(out)]  # fmt: skip
    else:
        command = [sys.executable, str(HERE / "loadgen.py"), "--url", url, "--rate", str(rate),
                   "--seconds", str(seconds), "--arrivals", "poisson", "--seed", str(seed),
                   "--bodies", str(bodies), "--out", str(out)]  # fmt: skip
    cpu = timed(command)
    rows = load_rows(out)
    latencies = [r["latency_ms"] for r in rows]
    lags = [r["lag_ms"] for r in rows]
    return {
        "generator": generator,
        "requests": len(rows),
        "accepted_ratio": sum(r["status"] == 202 for r in rows) / len(rows),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "lag_p50_ms": percentile(lags, 50),
        "lag_p99_ms": percentile(lags, 99),
        "lag_min_ms": min(lags),
        "cpu_percent": 100 * cpu / seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=None, help="per run (default 20)")
    args = parser.parse_args()
    seconds = args.seconds or (3 if args.quick else 20)
    go = loadgen_binary()
    workdir = Path(tempfile.mkdtemp(prefix="rebond-loadgen-compare-"))
    bodies = workdir / "bodies.json"
    bodies.write_text(json.dumps(questionnaires(500)))
    results: list[dict[str, Any]] = []
    with local_kafka() as broker:
        bootstrap = broker.bootstrap
        bench = Bench(bootstrap, workdir, args.quick)
        port = free_port()
        floor = bench.start(
            "floor",
            [str(HERE / "bare_pipeline.py"), "front", "--bootstrap", bootstrap,
             "--topic", FLOOR_TOPIC, "--port", str(port)],
            {}, port,
        )  # fmt: skip
        assert floor.url
        url = floor.url + "/v1/submissions"
        try:
            warm = workdir / "warm.txt"
            warm.write_text("\n".join(map(str, schedule(Arrivals.EVEN, 200, 2))))
            one_run("go", go, url, warm, 200, 2, bodies, workdir / "warm.csv", 0)
            for seed, rate in enumerate(RATES if not args.quick else (20, 200), start=1):
                run_seconds = max(seconds, 60.0) if rate == 1 and not args.quick else seconds
                times = workdir / f"times-{rate}.txt"
                times.write_text(
                    "\n".join(map(str, schedule(Arrivals.POISSON, rate, run_seconds, seed)))
                )
                for generator in ("go", "python", "python", "go"):
                    out = workdir / f"{generator}-{rate}-{time.monotonic_ns()}.csv"
                    run = one_run(generator, go, url, times, rate, run_seconds, bodies, out, seed)
                    results.append({"rate": rate, "seconds": run_seconds, **run})
                    print(
                        f"{rate:4}/s {generator:6} p50 {run['p50_ms']:6.2f} p99 "
                        f"{run['p99_ms']:7.2f} ms; lag p50 {run['lag_p50_ms']:.2f} p99 "
                        f"{run['lag_p99_ms']:.2f} min {run['lag_min_ms']:.2f} ms; "
                        f"CPU {run['cpu_percent']:.1f} %; accepted {run['accepted_ratio']:.3f}",
                        flush=True,
                    )
        finally:
            bench.stop(floor)
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average": os.getloadavg(),
        "quick": args.quick,
        "runs": results,
    }
    (RESULTS / "loadgen_compare.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
