"""Round 2 of the performance work (issue #23): Rebond at the load people really bring, idle,
per questionnaire and in memory, each beside the bare pipeline measured in the same run.

Both run on a broker of their own (started by `run.py` after round 1's phases), so that no
record, consumer group or store of round 1 is read or counted here. Rebond (intake, router,
notifier, events, and an SMTP server that accepts and discards every e-mail) goes through, on
fresh stores:

1. **idle, fresh** (`idle`): each service's CPU over 60 s with no traffic, from /proc;
2. **real load** (`real_load`): POST → referral on the association's topic, with random
   (Poisson) arrivals at 1/s for 180 s and 20/s for 60 s, evenly spaced at 1/s for 120 s and
   2/s for 60 s (the issue's table);
3. **campaign** (`campaign`): Poisson arrivals at 100/s for 60 s, POST → referral, and the CPU
   each service spent from the first request until every referral and e-mail was out, per
   questionnaire;
4. **soak** (`memory`): 100/s for `--soak-minutes` (soak.py), then each service's memory;
5. **history** (`idle`): questionnaires published straight to Kafka until 100,000 referrals
   exist, drained (every e-mail sent, every consumer group at the end of what it reads), so
   that each store holds that history (the notifier's delivery log 200,000 rows);
6. **idle, after history** (`idle`): 60 s again, CPU and memory.

Then the bare pipeline (bare_pipeline.py: the FastAPI floor, then two bare aiokafka hops, each
its own process) goes through 1 to 3 with the same schedules (the same seeds), and its memory
after them is the memory baseline. Latency counts from each request's scheduled send time.
"""

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.arrivals import Arrivals
from bench.memory import import_ladder
from bench.procfs import CpuMeter, idle_cpu, memory
from bench.run import (
    BARE_TOPICS,
    SERVICES,
    Bench,
    Proc,
    preload,
    start_bare_pipeline,
    through,
    wait_for_port,
)
from bench.soak import soak
from rebond_contracts.associations import AssociationId
from rebond_contracts.topics import DECISIONS, DELIVERIES, QUESTIONNAIRES, referrals
from rebond_kafka.testing import partitions_of
from rebond_testing import free_port

PARTS = ("real_load", "campaign", "idle", "memory")
REFERRAL_TOPICS = tuple(referrals(a).name for a in AssociationId)
#: Every bench questionnaire consents to sharing and gives an e-mail address, and the packaged
#: associations have no webhook: each referral makes the association's e-mail and the
#: person's confirmation, each published as one outcome on `notifications.deliveries`.
EMAILS_PER_QUESTIONNAIRE = 2


@dataclass(frozen=True)
class Load:
    arrivals: Arrivals
    rate: float
    seconds: float
    seed: int = 1

    @property
    def key(self) -> str:
        return f"{self.arrivals}_{self.rate:g}_per_s"


@dataclass(frozen=True)
class Plan:
    real_load: tuple[Load, ...]
    campaign: Load
    idle_s: float
    #: Idle windows taken one after the other each time; the report gives the median and range.
    idle_windows: int
    #: After a start or a drain, before an idle window: group joins and the last rounds end.
    settle_s: float
    soak_minutes: float
    history: int


FULL = Plan(
    real_load=(
        Load(Arrivals.POISSON, 1, 180, seed=11),
        Load(Arrivals.POISSON, 20, 60, seed=12),
        Load(Arrivals.EVEN, 1, 120),
        Load(Arrivals.EVEN, 2, 60),
    ),
    campaign=Load(Arrivals.POISSON, 100, 60, seed=13),
    idle_s=60,
    idle_windows=3,
    settle_s=10,
    soak_minutes=5,
    history=100_000,
)
QUICK = Plan(
    real_load=tuple(replace(load, seconds=5) for load in FULL.real_load),
    campaign=replace(FULL.campaign, seconds=5),
    idle_s=5,
    idle_windows=1,
    settle_s=2,
    soak_minutes=0.25,
    history=2_000,
)


# --- what the broker holds ----------------------------------------------------------------


async def records_on(bootstrap: str, topics: Sequence[str]) -> int:
    """Records written to `topics` so far (their end offsets: each topic here is only ever
    written, never compacted or truncated, within a bench run)."""
    partitions = await partitions_of(bootstrap, list(topics))
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def consumer_lag(bootstrap: str, groups: Sequence[str] | None = None) -> int:
    """Records the consumer `groups` (by default every group on the broker, whichever service
    it belongs to) have yet to commit: zero once each has read all it was given."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    committed: dict[TopicPartition, int] = {}
    try:
        if groups is None:
            groups = [group for group, *_ in await admin.list_consumer_groups()]
        for group in groups:
            for tp, meta in (await admin.list_consumer_group_offsets(group)).items():
                committed[tp] = min(committed.get(tp, meta.offset), meta.offset)
    finally:
        await admin.close()
    if not committed:
        return 0
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(list(committed))
    finally:
        await consumer.stop()
    return sum(max(0, ends[tp] - offset) for tp, offset in committed.items())


def wait_drained(
    bootstrap: str,
    groups: Sequence[str] | None,
    emails_per_questionnaire: int,
    timeout_s: float,
    label: str,
) -> dict[str, int]:
    """Until the consumer `groups` (None: all) have committed all they read and, for Rebond,
    an outcome is published for each e-mail of each questionnaire on the broker: the pipeline
    has finished what it was given. Raises after `timeout_s`, with the counts."""

    async def state() -> dict[str, int]:
        now = {"lag": await consumer_lag(bootstrap, groups)}
        if emails_per_questionnaire:
            now["questionnaires"] = await records_on(bootstrap, [QUESTIONNAIRES.name])
            now["referrals"] = await records_on(bootstrap, REFERRAL_TOPICS)
            now["email_outcomes"] = await records_on(bootstrap, [DELIVERIES.name])
        return now

    deadline = time.monotonic() + timeout_s
    told = time.monotonic()
    while True:
        now = asyncio.run(state())
        emails_due = emails_per_questionnaire * now.get("questionnaires", 0)
        if now["lag"] == 0 and now.get("email_outcomes", 0) >= emails_due:
            return now
        if time.monotonic() > deadline:
            raise RuntimeError(f"{label}: not drained after {timeout_s:.0f} s: {now}")
        if time.monotonic() - told > 30:
            print(f"  {label}: {now}", flush=True)
            told = time.monotonic()
        time.sleep(0.5)


# --- the steps ----------------------------------------------------------------------------


@dataclass
class Pipeline:
    """One pipeline under test: its processes, where to POST, where its referrals arrive."""

    name: str
    procs: dict[str, Proc]  # those whose CPU and memory are reported
    url: str
    topics: list[str]
    emails_per_questionnaire: int
    broker_pid: int | None  # measured beside the processes when known
    #: Whose lag says the pipeline is drained; None: every group on the (bench's own) broker.
    groups: list[str] | None = None
    #: The topics a reference goes through before `topics`, each named for the process that
    #: writes it, and the name of the one that writes `topics` (`through`'s stage latencies).
    stages: tuple[tuple[str, tuple[str, ...]], ...] = ()
    last_stage: str = "last"

    def pids(self) -> dict[str, int]:
        return {name: proc.process.pid for name, proc in self.procs.items()}

    def pids_and_broker(self) -> dict[str, int]:
        return {**self.pids(), **({"kafka": self.broker_pid} if self.broker_pid else {})}

    def memory(self) -> dict[str, dict[str, float]]:
        return {name: asdict(memory(pid)) for name, pid in self.pids().items()}

    def drain(self, bench: Bench, timeout_s: float = 180) -> dict[str, int]:
        return wait_drained(
            bench.bootstrap, self.groups, self.emails_per_questionnaire, timeout_s, self.name
        )


def start_rebond(bench: Bench, broker_pid: int) -> Pipeline:
    """The four services on fresh stores, the notifier's e-mails to a discarding SMTP server."""
    smtp_port = free_port()
    sink = bench.start(
        "smtp-sink",
        ["-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}", "-c", "aiosmtpd.handlers.Sink"],
        {}, None,
    )  # fmt: skip
    wait_for_port(smtp_port, sink)
    procs = {
        "intake": bench.service("intake", rate_limit_per_minute="0"),
        "router": bench.service("router"),
        "notifier": bench.service("notifier", smtp_port=str(smtp_port)),
        "events": bench.service("events"),
    }
    assert procs["intake"].url
    return Pipeline(
        "Rebond", procs, procs["intake"].url, list(REFERRAL_TOPICS),
        EMAILS_PER_QUESTIONNAIRE, broker_pid,
        stages=(("intake", (QUESTIONNAIRES.name,)), ("router", (DECISIONS.name,))),
        last_stage="notifier",
    )  # fmt: skip


def start_bare(bench: Bench, broker_pid: int | None) -> Pipeline:
    front, *hops = start_bare_pipeline(bench)
    assert front.url
    procs = {proc.name: proc for proc in (front, *hops)}
    groups = [hop.group for hop in hops if hop.group]
    return Pipeline(
        "bare pipeline", procs, front.url, [BARE_TOPICS[-1]], 0, broker_pid, groups,
        stages=(("bare-front", (BARE_TOPICS[0],)), ("bare-hop-1", (BARE_TOPICS[1],))),
        last_stage="bare-hop-2",
    )  # fmt: skip


def idle(pipeline: Pipeline, seconds: float, windows: int = 1) -> dict[str, dict[str, Any]]:
    """Each process's CPU over `windows` windows of `seconds` with no traffic, one after the
    other (`median_window`); the broker's beside them."""
    print(f"  {pipeline.name}: idle, {windows} × {seconds:.0f} s", flush=True)
    return median_window([idle_cpu(pipeline.pids_and_broker(), seconds) for _ in range(windows)])


def median_window(taken: Sequence[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, Any]]:
    """Per process, the window of median CPU (its `cpu_s` and `percent`; the lower one of an
    even count) and every window's `percent`, in the order taken. One window is thin evidence:
    five windows after a 20,000-referral history gave the events service 0.75 to 1.13 % of a
    core (2026-12-07)."""
    out: dict[str, dict[str, Any]] = {}
    for name in taken[0]:
        ordered = sorted((window[name] for window in taken), key=lambda value: value["percent"])
        middle = ordered[(len(ordered) - 1) // 2]
        out[name] = {**middle, "windows": [window[name]["percent"] for window in taken]}
    return out


def real_load(
    bench: Bench, pipeline: Pipeline, loads: Iterable[Load], bodies: Path
) -> dict[str, dict[str, Any]]:
    out = {}
    for load in loads:
        out[load.key] = measure(bench, pipeline, load, bodies)
        pipeline.drain(bench)
    return out


def measure(bench: Bench, pipeline: Pipeline, load: Load, bodies: Path) -> dict[str, Any]:
    result = through(
        bench, pipeline.url, pipeline.topics, load.rate, load.seconds, bodies,
        arrivals=load.arrivals, seed=load.seed, stages=pipeline.stages,
        last_stage=pipeline.last_stage,
    )  # fmt: skip
    print(
        f"  {pipeline.name}: {load.arrivals} {load.rate:g}/s for {load.seconds:g} s: "
        f"POST → referral p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms "
        f"({result['referrals_seen']} of {result['accepted']} accepted)",
        flush=True,
    )
    return result


def campaign(bench: Bench, pipeline: Pipeline, load: Load, bodies: Path) -> dict[str, Any]:
    """POST → referral at `load`, and the CPU of each process from the first request until the
    pipeline is drained (every referral out, every e-mail sent and its outcome published, all
    consumers at the end), per questionnaire accepted: what a questionnaire costs, whole."""
    meter = CpuMeter(pipeline.pids_and_broker())
    result = measure(bench, pipeline, load, bodies)
    pipeline.drain(bench, timeout_s=600)
    used = meter.read()
    accepted = max(1, result["accepted"])
    services = [name for name in pipeline.procs]
    result["window_s"] = round(meter.elapsed_s(), 1)
    result["cpu_s"] = {name: used[name]["cpu_s"] for name in used}
    result["cpu_ms_per_questionnaire"] = {
        name: round(1000 * used[name]["cpu_s"] / accepted, 3) for name in used
    }
    result["cpu_ms_per_questionnaire_all"] = round(
        sum(result["cpu_ms_per_questionnaire"][name] for name in services), 3
    )
    print(
        f"  {pipeline.name}: {result['cpu_ms_per_questionnaire_all']:.2f} ms of CPU per "
        f"questionnaire, all processes together ({result['cpu_ms_per_questionnaire']})",
        flush=True,
    )
    return result


def history(bench: Bench, pipeline: Pipeline, target: int) -> dict[str, Any]:
    """Questionnaires published straight to Kafka until `target` referrals exist, then drained:
    the router's, notifier's, intake's and events' stores hold that history."""
    started = time.monotonic()
    made = asyncio.run(records_on(bench.bootstrap, REFERRAL_TOPICS))
    missing = max(0, target - made)
    print(f"  {pipeline.name}: {made} referrals so far; {missing} more through Kafka", flush=True)
    asyncio.run(preload(bench.bootstrap, missing))
    state = pipeline.drain(bench, timeout_s=600 + target / 25)
    return {**state, "added": missing, "seconds": round(time.monotonic() - started, 1)}


def shared_steps(
    bench: Bench, pipeline: Pipeline, plan: Plan, parts: set[str], bodies: Path
) -> dict[str, Any]:
    """What Rebond and the bare pipeline both go through: idle, real load, campaign."""
    out: dict[str, Any] = {}
    time.sleep(plan.settle_s)
    out["memory_fresh"] = pipeline.memory()
    if "idle" in parts:
        out["idle_fresh"] = idle(pipeline, plan.idle_s, plan.idle_windows)
    if parts & {"real_load", "campaign", "memory"}:  # first requests take the cold paths
        measure(bench, pipeline, Load(Arrivals.EVEN, 20, 2), bodies)
        pipeline.drain(bench)
    if "real_load" in parts:
        out["real_load"] = real_load(bench, pipeline, plan.real_load, bodies)
    if "campaign" in parts:
        out["campaign"] = campaign(bench, pipeline, plan.campaign, bodies)
    return out


def rebond_steps(
    bench: Bench, pipeline: Pipeline, plan: Plan, parts: set[str], bodies: Path
) -> dict[str, Any]:
    """The shared steps, then Rebond's own: the soak, and the history before idling again."""
    out = shared_steps(bench, pipeline, plan, parts, bodies)
    if "memory" in parts:
        procs = list(pipeline.procs.values())
        print(f"  {pipeline.name}: soak, 100/s for {plan.soak_minutes:g} min", flush=True)
        out["soak"] = soak(bench, procs, pipeline.url, 100, plan.soak_minutes, bodies)
        pipeline.drain(bench, timeout_s=600)
        out["memory_after_soak"] = pipeline.memory()
    if "idle" in parts:
        out["history"] = history(bench, pipeline, plan.history)
        time.sleep(plan.settle_s)
        out["idle_after_history"] = idle(pipeline, plan.idle_s, plan.idle_windows)
        out["memory_after_history"] = pipeline.memory()
    return out


def bare_steps(
    bench: Bench, pipeline: Pipeline, plan: Plan, parts: set[str], bodies: Path
) -> dict[str, Any]:
    """The shared steps; the memory after them is the memory baseline."""
    return {**shared_steps(bench, pipeline, plan, parts, bodies), "memory": pipeline.memory()}


def round2(
    bench: Bench,
    bodies: Path,
    parts: set[str],
    broker_pid: int,
    soak_minutes: float | None = None,
    history: int | None = None,
) -> dict[str, Any]:
    """Rebond's steps, then the bare pipeline's, on `bench`'s broker; `parts` of PARTS.
    `soak_minutes` and `history` change the plan's."""
    plan = QUICK if bench.quick else FULL
    if soak_minutes is not None:
        plan = replace(plan, soak_minutes=soak_minutes)
    if history is not None:
        plan = replace(plan, history=history)
    out: dict[str, Any] = {"parts": sorted(parts), "plan": asdict(plan), "durations_s": {}}
    for name, start, steps in (
        ("rebond", start_rebond, rebond_steps),
        ("bare", start_bare, bare_steps),
    ):
        started = time.monotonic()
        pipeline = start(bench, broker_pid)
        try:
            out[name] = steps(bench, pipeline, plan, parts, bodies)
        finally:
            for proc in bench.procs:  # Rebond's SMTP server too
                bench.stop(proc)
        out["durations_s"][f"round2_{name}"] = round(time.monotonic() - started, 1)
    if "memory" in parts:
        out["rebond"]["imports"] = {name: import_ladder(name) for name in SERVICES}
    return out
