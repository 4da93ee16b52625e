"""`make bench`: Rebond's benchmarks on a local broker, every figure beside a same-run baseline.

Round 1's phases (intake, router, end to end, dispatcher) run on one broker; round 2's
(`round2.py`: real load, campaign, idle, memory) on a second one, started once the first is
stopped, so that neither reads or counts the other's records. Open-loop load comes from the Go
generator (`loadgen/`), its send times from `arrivals.schedule` (evenly spaced or Poisson).
Writes bench/results/latest.json, bench/results/report.md and bench/results/latency.png; a run
of some phases (`--only`) writes bench/results/only-<phases>.json (and .md for round 2).
`--quick` shortens every phase (a smoke run, not figures to publish).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import functools
import itertools
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.arrivals import Arrivals, schedule
from bench.baselines import b1, b2
from deploy.kafka import kafkactl
from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import QuestionnaireCompletedV1
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE, QuestionnaireV1, Stage
from rebond_contracts.topics import (
    DECISIONS,
    DELIVERIES,
    OUTCOMES,
    QUESTIONNAIRES,
    REFERRAL_STATUS,
    referrals,
)
from rebond_kafka.testing import create_topics, move_group_to_end, partitions_of
from rebond_testing import TopicProbe, free_port

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
P99_TARGET_MS = 25.0
#: The end-to-end baseline's three topics: POST -> first -> second -> last (bare_pipeline.py).
BARE_TOPICS = ("bench.bare.questionnaires", "bench.bare.decisions", "bench.bare.referrals")
#: Where intake's floor (bare_pipeline.py's front on the intake ladder) publishes.
FLOOR_TOPIC = "bench.floor"
#: The router's shipped association directory (`soft_directory` makes the bench's from it).
DIRECTORY_PATH = Path(str(files("rebond_router") / "directory.yaml"))


#: The services whose memory is reported.
SERVICES = ("intake", "router", "notifier", "events")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    url: str | None = None
    peak_rss_mb: float = 0.0
    group: str | None = None  # its consumer group, for the bench's own processes that have one

    def sample_memory(self) -> None:
        """Peak resident set (VmHWM) so far, from /proc."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)
        except FileNotFoundError:
            pass


@dataclass
class Bench:
    bootstrap: str
    workdir: Path
    quick: bool
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, module: list[str], env: dict[str, str], port: int | None) -> Proc:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, *module], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
            cwd=REPO,
        )  # fmt: skip
        proc = Proc(name, process, f"http://127.0.0.1:{port}" if port else None)
        self.procs.append(proc)
        if proc.url:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(proc.url + "/readyz", timeout=1).status_code == 200:
                        return proc
                except httpx.HTTPError:
                    pass
                if process.poll() is not None:
                    break
                time.sleep(0.2)
            raise RuntimeError(f"{name} not ready; see {self.workdir / (name + '.log')}")
        return proc

    def service(self, name: str, **extra: str) -> Proc:
        port = free_port()
        prefix = name.upper()
        if name == "router" and "directory_path" not in extra:
            extra["directory_path"] = str(soft_directory(self.workdir))
        env = {
            f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            f"{prefix}_PORT": str(port),
            f"{prefix}_LOG_LEVEL": "WARNING",
            f"{prefix}_DATABASE_URL": f"{'sqlite' if name == 'events' else 'sqlite+aiosqlite'}"
            f":///{self.workdir / (name + '.db')}",
            **{f"{prefix}_{k.upper()}": v for k, v in extra.items()},
        }
        return self.start(name, ["-m", f"rebond_{name}"], env, port)

    def wait_for_line(self, proc: Proc, line: str, timeout_s: float = 60) -> None:
        """Until `proc` has written `line` to its log (how a process without HTTP says ready)."""
        log = self.workdir / f"{proc.name}.log"
        deadline = time.monotonic() + timeout_s
        while line not in log.read_text().splitlines():
            if proc.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name} not ready; see {log}")
            time.sleep(0.2)

    def stop(self, proc: Proc) -> None:
        proc.sample_memory()
        if proc.process.poll() is None:
            proc.process.terminate()
            try:
                proc.process.wait(20)
            except subprocess.TimeoutExpired:
                proc.process.kill()


def soft_directory(folder: Path) -> Path:
    """The router's shipped directory with every capacity soft, written in `folder`, as round 1
    measured it (`bench.router_floor.bench_directory`): under hard capacity, the default since
    issue 21, a bench's first few dozen questionnaires of the week fill each association and
    the rest go to the human queue, whose referrals never reach an association's topic (the
    round-2 drain waited for them in vain)."""
    directory = yaml.safe_load(DIRECTORY_PATH.read_text())
    for association in directory["associations"]:
        association["capacity"] = "soft"
    path = folder / "directory.yaml"
    path.write_text(yaml.safe_dump(directory, allow_unicode=True, sort_keys=False))
    return path


def wait_for_port(port: int, proc: Proc, timeout_s: float = 30) -> None:
    """Until something accepts connections on `port` (how a server without /readyz is ready)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.process.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} does not accept connections on {port}")


# --- load ---------------------------------------------------------------------------------


def questionnaires(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Varied, valid questionnaires that all consent to sharing (so each yields a referral)."""
    rng = random.Random(seed)
    needs = ["listening", "peer_support", "mentoring", "coaching", "salaried_job", "new_business"]
    out = []
    for _ in range(count):
        answers = json.loads(json.dumps(EXAMPLE_QUESTIONNAIRE))
        answers["situation"]["stage"] = rng.choice([s.value for s in Stage])
        answers["needs"] = rng.sample(needs, rng.randint(1, 3))
        QuestionnaireV1.model_validate(answers)
        out.append(answers)
    return out


@functools.cache
def loadgen_binary() -> str:
    target = (
        Path(os.environ.get("REBOND_CACHE", Path.home() / ".cache" / "rebond")) / "bin" / "loadgen"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["go", "build", "-o", str(target), "."], cwd=HERE / "loadgen", check=True)
    return str(target)


def open_loop(
    bench: Bench,
    url: str,
    rate: float,
    seconds: float,
    bodies: Path,
    *,
    keyed: bool = False,
    arrivals: Arrivals = Arrivals.EVEN,
    seed: int = 1,
) -> list[dict[str, Any]]:
    """`keyed`: each request with its own Idempotency-Key, as the portal sends them. The send
    times come from `arrivals.schedule`: the same `seed` gives two runs the same schedule."""
    name = f"load-{uuid.uuid4().hex[:6]}"
    times = bench.workdir / f"{name}.schedule"
    times.write_text("\n".join(map(str, schedule(arrivals, rate, seconds, seed))) + "\n")
    out = bench.workdir / f"{name}.csv"
    subprocess.run(
        [loadgen_binary(), "-url", url + "/v1/submissions", "-schedule", str(times),
         "-bodies", str(bodies), "-out", str(out), *(["-idempotency-keys"] if keyed else [])],
        check=True,
    )  # fmt: skip
    return load_rows(out)


def load_rows(path: Path) -> list[dict[str, Any]]:
    """A load generator's CSV: per request its scheduled time, latency, status, reference, lag."""
    with path.open() as f:
        return [
            {"scheduled_ns": int(r["scheduled_unix_ns"]), "latency_ms": int(r["latency_us"]) / 1000,
             "status": int(r["status"]), "reference": r["reference"],
             "lag_ms": int(r["lag_us"]) / 1000}
            for r in csv.DictReader(f)
        ]  # fmt: skip


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    latencies = [r["latency_ms"] for r in rows]
    ok = sum(1 for r in rows if r["status"] == 202)
    return {
        "requests": len(rows),
        "accepted_ratio": ok / len(rows) if rows else 0.0,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else float("nan"),
    }


# --- phases -------------------------------------------------------------------------------


def intake_phase(bench: Bench, bodies: Path) -> dict[str, Any]:
    seconds = 4 if bench.quick else 10
    rates = [50, 100, 200, 250, 300, 350, 400, 450, 500, 600, 750, 1000, 1500, 2000, 3000]
    ladder = [100, 250, 500] if bench.quick else rates
    real = bench.service("intake", rate_limit_per_minute="0")
    port = free_port()
    bare = bench.start(
        "intake-nopublish", [str(HERE / "nopublish_intake.py")],
        {"INTAKE_PORT": str(port), "INTAKE_RATE_LIMIT_PER_MINUTE": "0"}, port,
    )  # fmt: skip
    port = free_port()
    floor = bench.start(
        "intake-floor",
        [str(HERE / "bare_pipeline.py"), "front", "--bootstrap", bench.bootstrap,
         "--topic", FLOOR_TOPIC, "--port", str(port)],
        {}, port,
    )  # fmt: skip
    result: dict[str, Any] = {}
    # API clients may send no key; the portal sends one with every submission (one store
    # insert to claim it): both are measured. The no-publish baseline takes the keyless path;
    # the floor is FastAPI, the questionnaire's validation and the publish, nothing of intake's.
    full_seconds = seconds
    for label, proc, keyed in (
        ("with_kafka", real, False),
        ("with_kafka_keyed", real, True),
        ("no_publish", bare, False),
        ("floor", floor, False),
    ):
        assert proc.url
        seconds = full_seconds
        open_loop(bench, proc.url, 200, 2, bodies, keyed=keyed)  # warm-up
        steps = []
        for rate in ladder:
            rows = open_loop(bench, proc.url, rate, seconds, bodies, keyed=keyed)
            summary = {"rate": rate, **summarise(rows)}
            steps.append(summary)
            print(
                f"  intake {label:10} {rate:5}/s p50 {summary['p50_ms']:.1f} ms "
                f"p99 {summary['p99_ms']:.1f} ms accepted {summary['accepted_ratio']:.3f}",
                flush=True,
            )
            if summary["p99_ms"] > P99_TARGET_MS * 4 or summary["accepted_ratio"] < 0.99:
                if rate >= 500:
                    break
                # below 500/s go on, but briefly: the report wants the 500/s point too
                seconds = min(seconds, 4)
        sustained = [
            s["rate"]
            for s in steps
            if s["p99_ms"] <= P99_TARGET_MS and s["accepted_ratio"] >= 0.999
        ]
        at_500 = next((s for s in steps if s["rate"] == 500), None)
        result[label] = {
            "steps": steps,
            "max_sustained_rate": max(sustained, default=0),
            "at_500": at_500,
        }
        proc.sample_memory()
    for proc in (real, bare, floor):
        bench.stop(proc)
    rate = result["with_kafka"]["max_sustained_rate"]
    for label in ("no_publish", "floor"):
        base = result[label]["max_sustained_rate"]
        result[f"ratio_to_{label}"] = rate / base if base else None
    return result


async def preload(bootstrap: str, count: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        now = dt.datetime.now(dt.UTC)
        pending = []
        for i, answers in enumerate(questionnaires(count)):
            digits = f"{i:016d}"
            reference = "RB-" + "-".join(digits[k : k + 4] for k in range(0, 16, 4))
            payload = QuestionnaireCompletedV1(
                reference=reference,
                received_at=now,
                questionnaire=QuestionnaireV1.model_validate(answers),
            )
            event = QUESTIONNAIRES.envelope(payload, subject=reference, correlationid=reference)
            headers = [(k, v.encode()) for k, v in event.kafka_headers().items()]
            pending.append(
                await producer.send(
                    QUESTIONNAIRES.name,
                    event.kafka_value(),
                    key=reference.encode(),
                    headers=headers,
                )
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    partitions = await partitions_of(bootstrap, [topic])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    finally:
        await admin.close()


async def decision_times(bootstrap: str) -> list[int]:
    """The producer timestamps (ms) of every record on the decisions topic (only the router
    writes it, and only the router phase runs one before this is read)."""
    ends = await end_offsets(bootstrap, DECISIONS.name)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    times: list[int] = []
    try:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning()
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                times.extend(r.timestamp for r in records)
    finally:
        await consumer.stop()
    return times


def steady_rate(times_ms: list[int]) -> tuple[float, int]:
    """Records per second after the first batch: those stamped after the first millisecond
    over the time from it to the last (a batched consumer's first commit can come late, so
    committed offsets polled from outside would flatter or miss it)."""
    first, last = min(times_ms), max(times_ms)
    after = sum(1 for t in times_ms if t > first)
    return (after / ((last - first) / 1000) if last > first else 0.0), after


def router_phase(bench: Bench) -> dict[str, Any]:
    count = 5_000 if bench.quick else 50_000
    asyncio.run(preload(bench.bootstrap, count))
    ends = asyncio.run(end_offsets(bench.bootstrap, QUESTIONNAIRES.name))
    total = sum(ends.values())
    b1_count = min(total, 2_000 if bench.quick else 10_000)
    print(
        f"  router: {total} questionnaires on the topic; B1 over the first {b1_count}", flush=True
    )
    rate_b1 = asyncio.run(
        b1(
            bench.bootstrap,
            QUESTIONNAIRES.name,
            "bench.sink",
            f"bench-b1-{uuid.uuid4().hex[:6]}",
            b1_count,
        )
    )
    rate_b2 = asyncio.run(
        b2(
            bench.bootstrap,
            QUESTIONNAIRES.name,
            "bench.sink",
            f"bench-b2-{uuid.uuid4().hex[:6]}",
            total,
        )
    )
    print(f"  B1 {rate_b1:.0f}/s, B2 {rate_b2:.0f}/s", flush=True)
    floor = router_floor(bench, 2_000 if bench.quick else 10_000)
    print(
        f"  router without Kafka {floor['alone_per_s']:.0f}/s, "
        f"least work {floor['least_per_s']:.0f}/s",
        flush=True,
    )
    group = f"rebond-router.bench-{uuid.uuid4().hex[:6]}"
    router = bench.service("router", group_id=group)
    progress_since: float | None = None
    # Runs until the topic is drained, or for `window_s` seconds of progress when the router is
    # slower than that allows; the rate comes from the decisions' own timestamps.
    window_s = 60 if bench.quick else 120
    deadline = time.monotonic() + 900
    done = 0
    while time.monotonic() < deadline:
        if progress_since is not None and time.perf_counter() - progress_since > window_s:
            break
        done = sum(asyncio.run(committed(bench.bootstrap, group)).values())
        if progress_since is None and done > 0:
            progress_since = time.perf_counter()
        if done >= total:
            break
        router.sample_memory()
        time.sleep(0.2)
    bench.stop(router)
    assert progress_since is not None, "the router made no progress"
    rate, measured = steady_rate(asyncio.run(decision_times(bench.bootstrap)))
    print(f"  router {rate:.0f}/s over {measured} decisions", flush=True)
    return {
        "questionnaires": total,
        "router_measured_over": measured,
        "router_per_s": rate,
        "b1_per_s": rate_b1,
        "b2_per_s": rate_b2,
        "ratio_to_b1": rate / rate_b1,
        "ratio_to_b2": rate / rate_b2,
        "without_kafka_per_s": floor["alone_per_s"],
        "least_work_per_s": floor["least_per_s"],
        "floor_records": floor["records"],
        "ratio_to_without_kafka": rate / floor["alone_per_s"],
        "least_work_ratio_to_b2": floor["least_per_s"] / rate_b2,
        "router_group": group,
        "peak_rss_mb": router.peak_rss_mb,
    }


def router_floor(bench: Bench, count: int) -> dict[str, Any]:
    """The router's own work on the first `count` preloaded records, without Kafka, in a
    process of its own (bench/router_floor.py)."""
    database = f"sqlite+aiosqlite:///{bench.workdir / 'router_floor.db'}"
    done = subprocess.run(
        [sys.executable, str(HERE / "router_floor.py"), "--bootstrap", bench.bootstrap,
         "--count", str(count), "--database", database],
        cwd=HERE, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    figures: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return figures


class KeyWatch:
    """When each key first arrives on `topics` (ns since the epoch), seen by a consumer of no
    group placed at the topics' end, in a thread of its own: `with KeyWatch(...) as watch:`
    returns once the consumer is placed, so nothing sent afterwards is missed."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.bootstrap, self.topics = bootstrap, topics
        self.seen: dict[str, int] = {}
        self._expected: set[str] | None = None
        self._ready, self._done, self._stop = (
            threading.Event(),
            threading.Event(),
            threading.Event(),
        )
        self._thread = threading.Thread(target=lambda: asyncio.run(self._watch()), daemon=True)

    def __enter__(self) -> KeyWatch:
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError(f"no consumer placed on {self.topics} within 60 s")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def wait_for(self, keys: set[str], timeout_s: float) -> dict[str, int]:
        """Until every one of `keys` has arrived (the end marker), or `timeout_s`."""
        self._expected = keys
        self._done.wait(timeout_s)
        return dict(self.seen)

    async def _watch(self) -> None:
        # The probe places its consumer at the topics' end on entry. Its own `poll` would keep
        # every record; the watch reads the consumer itself and keeps only each key's arrival.
        async with TopicProbe(self.bootstrap, self.topics) as probe:
            self._ready.set()
            while not self._stop.is_set():
                batches = await probe.consumer.getmany(timeout_ms=100)
                arrived = time.time_ns()
                for records in batches.values():
                    for record in records:
                        if record.key is not None:
                            self.seen.setdefault(record.key.decode(), arrived)
                if self._expected is not None and self._expected <= self.seen.keys():
                    self._done.set()


def through(
    bench: Bench,
    url: str,
    topics: list[str],
    rate: float,
    seconds: float,
    bodies: Path,
    *,
    arrivals: Arrivals = Arrivals.EVEN,
    seed: int = 1,
    stages: Sequence[tuple[str, Sequence[str]]] = (),
    last_stage: str = "last",
) -> dict[str, Any]:
    """Open-loop POSTs to `url`; each accepted reference's latency from its *scheduled* send
    time until its key is on `topics`; and the POSTs' own latencies (`post_*`).

    `stages` names the topics a reference goes through before `topics`, in order (`(label,
    topics)`: the process that writes them): each is watched by a consumer of its own, and
    `stages` in the result gives, per stage and for the last one (`topics`, `last_stage`), the
    p50 and p99
    of the time from the previous arrival (the scheduled send time for the first). All arrivals
    are seen the same way, so a watcher's own fetch delay is in every stage alike and cancels
    out of the differences, not out of the first."""
    with ExitStack() as watching:
        watches = [
            (label, watching.enter_context(KeyWatch(bench.bootstrap, list(names))))
            for label, names in stages
        ]
        watch = watching.enter_context(KeyWatch(bench.bootstrap, topics))
        rows = open_loop(bench, url, rate, seconds, bodies, arrivals=arrivals, seed=seed)
        accepted = [r for r in rows if r["status"] == 202]
        keys = {r["reference"] for r in accepted}
        seen = watch.wait_for(keys, timeout_s=30)
        arrivals_at = [(label, stage.wait_for(keys, timeout_s=5)) for label, stage in watches]
    latencies = [
        (seen[r["reference"]] - r["scheduled_ns"]) / 1e6 for r in accepted if r["reference"] in seen
    ]
    post = summarise(rows)
    return {
        "stages": stage_latencies(accepted, [*arrivals_at, (last_stage, seen)]),
        "arrivals": str(arrivals),
        "rate": rate,
        "seconds": seconds,
        "accepted": len(accepted),
        "referrals_seen": len(latencies),
        "post_p50_ms": post["p50_ms"],
        "post_p99_ms": post["p99_ms"],
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "p999_ms": percentile(latencies, 99.9),
        "max_ms": max(latencies) if latencies else float("nan"),
        "latencies_ms": latencies,
    }


def stage_latencies(
    accepted: list[dict[str, Any]], arrivals: list[tuple[str, dict[str, int]]]
) -> dict[str, dict[str, float]]:
    """Per stage, p50 and p99 (ms) of the time from the previous stage's arrival (from the
    scheduled send time for the first), over the references seen at every stage."""
    gaps: dict[str, list[float]] = {label: [] for label, _ in arrivals}
    for row in accepted:
        reference = row["reference"]
        if not all(reference in seen for _, seen in arrivals):
            continue
        before = row["scheduled_ns"]
        for label, seen in arrivals:
            gaps[label].append((seen[reference] - before) / 1e6)
            before = seen[reference]
    return {
        label: {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99),
                "count": len(values)}
        for label, values in gaps.items()
    }  # fmt: skip


def e2e_phase(bench: Bench, bodies: Path, router_group: str) -> dict[str, Any]:
    seconds = 10 if bench.quick else 60
    rate = 200
    notifier_group = f"rebond-notifier.bench-{uuid.uuid4().hex[:6]}"
    intake_group = f"rebond-intake.bench-{uuid.uuid4().hex[:6]}"
    # Every consumer starts at the end: the earlier phases left tens of thousands of records
    # (the router's decisions and statuses) that would otherwise be read during this one.
    intake_topics = [QUESTIONNAIRES.name, OUTCOMES.name, REFERRAL_STATUS.name, DELIVERIES.name]
    for group, topics in (
        (router_group, [QUESTIONNAIRES.name]),
        (notifier_group, [DECISIONS.name]),
        (f"{notifier_group}.status", [REFERRAL_STATUS.name]),
        (intake_group, intake_topics),
    ):
        asyncio.run(move_group_to_end(bench.bootstrap, group, topics))
    intake = bench.service("intake", rate_limit_per_minute="0", group_id=intake_group)
    router = bench.service("router", group_id=router_group)
    # A mail sink, as `make run` has: the notifier's e-mails go out once each, not into retries.
    smtp_port = free_port()
    mailsink = bench.start(
        "mailsink",
        ["-m", "rebond_notifier.mailsink", "--port", str(smtp_port),
         "--dir", str(bench.workdir / "mail")],
        {}, None,
    )  # fmt: skip
    notifier = bench.service("notifier", group_id=notifier_group, smtp_port=str(smtp_port))
    assert intake.url
    topics = [referrals(a).name for a in AssociationId]
    result = through(bench, intake.url, topics, rate, seconds, bodies)
    for proc in (intake, router, notifier, mailsink):
        bench.stop(proc)
    result["peak_rss_mb"] = {p.name: p.peak_rss_mb for p in (intake, router, notifier)}
    result["bare_pipeline"] = bare_pipeline(bench, rate, seconds, bodies)
    return result


def bare_pipeline(bench: Bench, rate: int, seconds: int, bodies: Path) -> dict[str, Any]:
    """The same load through bare_pipeline.py: front -> hop -> hop, nothing but the hops."""
    procs = start_bare_pipeline(bench)
    try:
        assert procs[0].url
        return through(bench, procs[0].url, [BARE_TOPICS[-1]], rate, seconds, bodies)
    finally:
        for proc in procs:
            bench.stop(proc)


def start_bare_pipeline(bench: Bench) -> list[Proc]:
    """bare_pipeline.py's front and its two hops, started and ready: [front, hop 1, hop 2]."""
    script = str(HERE / "bare_pipeline.py")
    env: dict[str, str] = {}
    port = free_port()
    front = bench.start(
        "bare-front", [script, "front", "--bootstrap", bench.bootstrap, "--topic", BARE_TOPICS[0],
                       "--port", str(port)], env, port,
    )  # fmt: skip
    hops = []
    for i, (source, sink) in enumerate(itertools.pairwise(BARE_TOPICS), 1):
        group = f"bench-bare-hop-{i}-{uuid.uuid4().hex[:6]}"
        command = [script, "hop", "--bootstrap", bench.bootstrap, "--source", source,
                   "--sink", sink, "--group", group]  # fmt: skip
        hops.append(bench.start(f"bare-hop-{i}", command, env, None))
        hops[-1].group = group
    for hop in hops:
        bench.wait_for_line(hop, "ready")
    return [front, *hops]


def dispatcher_phase(bench: Bench) -> dict[str, Any]:
    """The notifier's dispatcher beside the bare SMTP client (bench/dispatcher.py)."""
    count = 1000 if bench.quick else 3000
    done = subprocess.run(
        [sys.executable, str(HERE / "dispatcher.py"), "--deliveries", str(count)],
        check=True, capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"  dispatcher {result['cpu_s_per_1000']:.2f} ms CPU per delivery, bare SMTP "
        f"{result['bare_smtp']['cpu_s_per_1000']:.2f} ms (×{result['cpu_ratio_to_bare']:.2f})",
        flush=True,
    )
    return result


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    pid: int  # the broker's JVM: its CPU is reported beside the services'


@contextmanager
def local_kafka() -> Iterator[Broker]:
    """A broker of its own on free ports, with the registry's topics and the bench's."""
    data_dir = Path(tempfile.mkdtemp(prefix="rebond-bench-kafka-"))
    port = free_port()
    kafkactl.start(port, free_port(), data_dir, 3)
    topics = ("bench.sink", FLOOR_TOPIC, *BARE_TOPICS)
    asyncio.run(create_topics(f"127.0.0.1:{port}", topics, 3))
    try:
        yield Broker(f"127.0.0.1:{port}", int((data_dir / "kafka.pid").read_text()))
    finally:
        kafkactl.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


ROUND1 = ("intake", "router", "end_to_end", "dispatcher")


def main() -> int:
    from bench.round2 import PARTS

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--only",
        choices=(*ROUND1, *PARTS),
        action="append",
        help="run only these phases (repeatable); the report covers what ran",
    )
    parser.add_argument(
        "--soak-minutes", type=float, default=None, help="round 2's soak (default 5, quick 0.25)"
    )
    parser.add_argument(
        "--history",
        type=int,
        default=None,
        help="referrals before round 2's second idle window (default 100,000, quick 2,000)",
    )
    args = parser.parse_args()
    everything = {*ROUND1, *PARTS}
    phases = set(args.only or everything)
    # SIGTERM unwinds like Ctrl-C, so the broker and services started here are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    RESULTS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="rebond-bench-"))
    bodies = workdir / "bodies.json"
    bodies.write_text(json.dumps(questionnaires(500)))
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
        },
        "quick": args.quick,
        "durations_s": {},
    }
    if phases & set(ROUND1):
        round1(results, phases, workdir, bodies, args.quick)
    if round2_parts := phases & set(PARTS):
        from bench.round2 import round2

        print(f"round 2 ({', '.join(sorted(round2_parts))}) on a broker of its own")
        started = time.monotonic()
        with local_kafka() as broker:
            (workdir / "round2").mkdir()
            bench = Bench(broker.bootstrap, workdir / "round2", args.quick)
            try:
                results["round2"] = round2(
                    bench, bodies, round2_parts, broker.pid, args.soak_minutes, args.history
                )
            finally:
                for proc in bench.procs:
                    bench.stop(proc)
        results["durations_s"]["round2"] = round(time.monotonic() - started, 1)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    if phases != everything:  # a partial run: its figures, round 2's section, no plot
        from bench.report import write_partial

        partial = RESULTS / f"only-{'-'.join(sorted(phases))}.json"
        write_partial(results, partial)
        print(f"results: {partial}")
        return 0
    from bench.report import write_report

    write_report(results, RESULTS)
    print(f"results: {RESULTS / 'latest.json'}, {RESULTS / 'report.md'}, {RESULTS / 'latency.png'}")
    return 0


def round1(
    results: dict[str, Any], phases: set[str], workdir: Path, bodies: Path, quick: bool
) -> None:
    """Round 1's phases, on a broker of their own."""
    with local_kafka() as broker:
        bench = Bench(broker.bootstrap, workdir, quick)
        steps: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
            "intake": (
                "intake (open loop, latency from the scheduled send time)",
                lambda: intake_phase(bench, bodies),
            ),
            "router": (
                "router (preloaded topic) beside bare aiokafka baselines",
                lambda: router_phase(bench),
            ),
            "end_to_end": (
                "end to end (POST -> referral on the association's topic)",
                lambda: e2e_phase(
                    bench, bodies, results.get("router", {}).get(
                        "router_group", f"rebond-router.bench-{uuid.uuid4().hex[:6]}"
                    ),
                ),
            ),
            "dispatcher": (
                "notifier dispatcher (SQLite log, real SMTP sink) beside bare SMTP sends",
                lambda: dispatcher_phase(bench),
            ),
        }  # fmt: skip
        try:
            for name in ROUND1:
                if name in phases:
                    title, phase = steps[name]
                    print(title, flush=True)
                    started = time.monotonic()
                    results[name] = phase()
                    results["durations_s"][name] = round(time.monotonic() - started, 1)
        finally:
            for proc in bench.procs:
                bench.stop(proc)
        peaks: dict[str, float] = {}
        for proc in bench.procs:
            if proc.name in SERVICES:  # not the mail sink or the no-publish baseline's helpers
                peaks[proc.name] = max(peaks.get(proc.name, 0.0), proc.peak_rss_mb)
        results["peak_rss_mb"] = peaks


if __name__ == "__main__":
    sys.exit(main())
