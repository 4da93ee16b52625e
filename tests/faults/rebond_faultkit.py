"""Fault-suite helpers and fixtures: a broker of the test's own (killable), mail and webhook sinks, Kafka I/O.

Every broker here is started from `deploy/kafka/kafkactl.py` with its own data dir and free ports,
so killing it never disturbs the session broker other tests use. Services run as real processes
through `tests/conftest.py`'s `launch` fixture.
"""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from rebond_contracts.payloads import QuestionnaireCompletedV1
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_contracts.topics import DECISIONS, QUESTIONNAIRES
from rebond_testing import (  # the fault tests import these from here too
    IN_CI,
    MailSink,
    WebhookSink,
    committed,
    free_port_pair,
    new_reference,
    unavailable,
    until,
)

REPO = Path(__file__).resolve().parents[2]
KAFKACTL = REPO / "deploy" / "kafka" / "kafkactl.py"
RESULTS = Path(__file__).resolve().parent / "results"
__all__ = ["IN_CI", "committed", "new_reference", "until"]


class OwnBroker:
    """A plaintext single-node Kafka owned by one test: `kill()` (SIGKILL) and `start()` again."""

    def __init__(self, partitions: int = 3) -> None:
        self.port = free_port_pair()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.data_dir = Path(tempfile.mkdtemp(prefix="rebond-fault-kafka-"))
        self.partitions = partitions
        self.started = False

    def _ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(KAFKACTL), *args, "--data-dir", str(self.data_dir)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    def start(self) -> None:
        """Start (or restart, same port and data) the broker. A first start that fails, e.g. a
        port taken in the meantime, is tried again on other free ports."""
        for attempt in range(3):
            done = self._ctl(
                "start", "--no-secure", "--port", str(self.port),
                "--partitions", str(self.partitions),
            )  # fmt: skip
            if done.returncode == 0:
                self.started = True
                return
            log = self.data_dir / "kafka.log"
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            if self.started or attempt == 2:
                raise RuntimeError(f"kafkactl start failed: {done.stdout}{done.stderr}{tail}")
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir.mkdir()
            self.port = free_port_pair()
            self.bootstrap = f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        self._ctl("kill")

    def stop(self) -> None:
        self._ctl("stop")
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _own_broker(partitions: int) -> Iterator[OwnBroker]:
    broker = OwnBroker(partitions)
    try:
        broker.start()
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        broker.stop()
        unavailable(f"could not start a broker for the fault test: {error}")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def own_broker() -> Iterator[OwnBroker]:
    """A broker of this test only (3 partitions), which the test may kill and restart."""
    yield from _own_broker(3)


@pytest.fixture(scope="module")
def module_broker() -> Iterator[OwnBroker]:
    """A broker shared by one module's tests (never killed), apart from the session's."""
    yield from _own_broker(3)


@pytest.fixture
def folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="rebond-fault-"))


# --- the people's side: questionnaires ---------------------------------------------------------


def questionnaire(
    consenting: bool = True, email: str = "claire@example.org", stage: str | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(EXAMPLE_QUESTIONNAIRE))
    if stage is not None:
        data["situation"]["stage"] = stage
    if consenting:
        data["contact"]["email"] = email
    else:
        data["contact"] = None
        data["consents"]["share_with_association"] = False
    return data


def questionnaire_record(reference: str, **kwargs: Any) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A real `questionnaires.completed` event (value, headers), as intake would publish it."""
    payload = QuestionnaireCompletedV1.model_validate(
        {"reference": reference, "received_at": datetime.now(UTC),
         "questionnaire": questionnaire(**kwargs)}
    )  # fmt: skip
    event = QUESTIONNAIRES.envelope(payload, subject=reference, correlationid=reference)
    return event.kafka_value(), [(k, v.encode()) for k, v in event.kafka_headers().items()]


#: A record as `produce` sends it: (topic, value, headers, key).
Outgoing = tuple[str, bytes | None, list[tuple[str, bytes]], str]


def questionnaire_records(count: int, stage: str | None = None) -> tuple[list[str], list[Outgoing]]:
    """`count` new questionnaires, as intake would publish them, ready for `produce`: their
    references, and their records. The i-th person's e-mail address is `person_email(i)`, the
    one `outcome` looks for by default, so that each person's mail is told apart."""
    references = [new_reference() for _ in range(count)]
    records = [
        (QUESTIONNAIRES.name, *questionnaire_record(ref, email=person_email(i), stage=stage), ref)
        for i, ref in enumerate(references)
    ]
    return references, records


async def produce(bootstrap: str, records: list[Outgoing]) -> list[Any]:
    """Send (topic, value, headers, key) records, all acknowledged; their RecordMetadata."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key.encode(), headers=headers)
            for topic, value, headers, key in records
        ]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


@dataclass
class Seen:
    """Records read from some topics: (topic, key, headers, value)."""

    records: list[tuple[str, str | None, dict[str, str], bytes]] = field(default_factory=list)

    def on(self, prefix: str) -> list[tuple[str, str | None, dict[str, str], bytes]]:
        return [r for r in self.records if r[0].startswith(prefix)]

    def ids_by_subject(self, prefix: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = defaultdict(set)
        for _, key, headers, _ in self.on(prefix):
            found[headers.get("ce_subject") or key or ""].add(headers.get("ce_id", ""))
        return found


async def read_topics(
    bootstrap: str,
    pattern: str,
    until: Callable[[Seen], bool],
    within_s: float,
    settle_s: float = 2.0,
) -> Seen:
    """Read topics matching `pattern` from the start until `until(seen)` holds (then `settle_s`
    more, for duplicates to show) or `within_s` passes."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"fault-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=2000,
    )
    await consumer.start()
    consumer.subscribe(pattern=pattern)
    seen = Seen()
    deadline = time.monotonic() + within_s
    settled_at: float | None = None
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for rows in batches.values():
                seen.records += [
                    (r.topic, r.key.decode() if r.key else None,
                     {k: v.decode("utf-8", "replace") for k, v in r.headers}, r.value or b"")
                    for r in rows
                ]  # fmt: skip
            if settled_at is None and until(seen):
                settled_at = time.monotonic()
            if settled_at is not None and time.monotonic() - settled_at >= settle_s:
                break
        return seen
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Posted:
    """One questionnaire posted to intake: its number, its `Idempotency-Key` (if any), when it
    was sent (monotonic) and how long its answer took, the status (0: no answer, `error` says
    why), the reference (a `202`) and the `Retry-After` header (a `503`)."""

    index: int
    key: str | None
    at: float
    latency_s: float
    status: int
    reference: str | None = None
    retry_after: str | None = None
    error: str | None = None


async def post_submissions(
    intake_url: str,
    indices: Iterable[int],
    rate_per_s: float,
    body: Callable[[int], dict[str, Any]],
    key: Callable[[int], str] | None = None,
) -> list[Posted]:
    """Post `body(index)` for each index, `rate_per_s` a second on a fixed schedule (an open
    loop: a slow answer never delays the next post, as people do not wait for each other), with
    `Idempotency-Key: key(index)` when `key` is given; every answer, in the order posted."""

    async def one(client: httpx.AsyncClient, index: int) -> Posted:
        headers = {"Idempotency-Key": key(index)} if key else {}
        sent = time.monotonic()
        try:
            reply = await client.post(
                f"{intake_url}/v1/submissions", json=body(index), headers=headers
            )
        except httpx.HTTPError as error:
            return Posted(
                index, headers.get("Idempotency-Key"), sent, time.monotonic() - sent, 0,
                error=type(error).__name__,
            )  # fmt: skip
        return Posted(
            index, headers.get("Idempotency-Key"), sent, time.monotonic() - sent,
            reply.status_code,
            reply.json().get("reference") if reply.status_code == 202 else None,
            reply.headers.get("retry-after"),
        )  # fmt: skip

    # An idle connection is dropped by the client well before uvicorn closes it (its
    # `timeout_keep_alive` is 5 s, as httpx's default expiry is): with both at 5 s, a post could
    # go out on a connection the server was closing at that instant and get `ReadError` with
    # no answer (status 0), which says nothing about intake.
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=50, keepalive_expiry=2.0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        start, tasks = time.monotonic(), []
        for i, index in enumerate(indices):
            await asyncio.sleep(max(0.0, start + i / rate_per_s - time.monotonic()))
            tasks.append(asyncio.create_task(one(client, index)))
        return list(await asyncio.gather(*tasks))


def latency_figures(posted: Iterable[Posted]) -> dict[str, float | int]:
    """How many answers, and their latency's median, 95th and 99th percentiles and maximum (ms)."""
    latencies = sorted(p.latency_s * 1000 for p in posted)
    if not latencies:
        return {"count": 0}

    def at(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, round(q * (len(latencies) - 1)))], 1)

    return {"count": len(latencies), "p50_ms": at(0.5), "p95_ms": at(0.95),
            "p99_ms": at(0.99), "max_ms": round(latencies[-1], 1)}  # fmt: skip


@dataclass
class Decided:
    """What `routing.decisions` says of some accepted submissions."""

    #: References with no decision, with several (distinct event ids), and with a wrong number
    #: of referrals inside their decisions (one when the person consented to sharing, else none).
    lost: list[str]
    several: list[str]
    wrong_referrals: list[str]
    #: Records repeated with the same event id (at-least-once; readers take them once).
    raw_duplicates: int


def decided(bootstrap: str, consenting: dict[str, bool], within_s: float = 150.0) -> Decided:
    """Read `routing.decisions` until each reference of `consenting` (reference: whether the
    person consented to sharing) has a decision, or `within_s` passed, then a few seconds more
    for duplicates to show, and count what went wrong."""
    seen = asyncio.run(
        read_topics(
            bootstrap, r"routing\.decisions",
            lambda s: consenting.keys() <= s.ids_by_subject(DECISIONS.name).keys(),
            within_s=within_s, settle_s=3,
        )
    )  # fmt: skip
    decisions = seen.ids_by_subject(DECISIONS.name)
    referrals: dict[str, set[str]] = defaultdict(set)
    for _, _, headers, value in seen.on(DECISIONS.name):
        if (referral := json.loads(value).get("referral")) is not None:
            referrals[headers["ce_subject"]].add(referral["referral_id"])
    return Decided(
        lost=[ref for ref in consenting if ref not in decisions],
        several=[ref for ref in consenting if len(decisions.get(ref, ())) > 1],
        wrong_referrals=[
            ref for ref, shares in consenting.items() if len(referrals[ref]) != int(shares)
        ],
        raw_duplicates=len(seen.on(DECISIONS.name)) - sum(len(ids) for ids in decisions.values()),
    )


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def json_lines(path: Path, offset: int = 0) -> list[dict[str, Any]]:
    """A service's JSON log lines from byte `offset` on (lines that are not JSON are skipped)."""
    lines = []
    with path.open("rb") as log:
        log.seek(offset)
        for line in log.read().decode("utf-8", "replace").splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


class Readiness:
    """Polls each service's `/readyz` every `every_s`, each in a thread of its own (a slow
    answer from one does not space out the others' samples), keeping (monotonic time, service,
    status); 0 stands for no answer."""

    def __init__(self, urls: dict[str, str], every_s: float = 0.5) -> None:
        self.urls = urls
        self.every_s = every_s
        self.samples: list[tuple[float, str, int]] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, args=(name, url), daemon=True)
            for name, url in urls.items()
        ]

    def _poll(self, name: str, url: str) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                try:
                    status = client.get(f"{url}/readyz").status_code
                except httpx.HTTPError:
                    status = 0
                self.samples.append((time.monotonic(), name, status))
                self._stop.wait(self.every_s)

    def __enter__(self) -> "Readiness":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def between(self, name: str, start: float, end: float) -> list[int]:
        return [status for at, n, status in self.samples if n == name and start <= at <= end]

    def ready_again_after(self, name: str, since: float) -> float | None:
        """Seconds from `since` to the first 200 of `name` after it."""
        later = [
            at for at, n, status in self.samples if n == name and at >= since and status == 200
        ]
        return round(min(later) - since, 1) if later else None


def record_figures(name: str, figures: dict[str, Any]) -> None:
    """Print the scenario's figures and keep them in tests/faults/results/<name>.json."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"\nFAULT FIGURES {name}: {json.dumps(figures, sort_keys=True)}")


# --- the associations' side: SMTP and webhooks -----------------------------------------------


@pytest.fixture
def smtp() -> Iterator[MailSink]:
    """The associations' and people's mail server, which a test may stop and start again."""
    with MailSink() as server:
        yield server


@pytest.fixture
def hooks() -> Iterator[WebhookSink]:
    """The associations' webhook receiver; `hooks.modes[path]` decides its answers."""
    with WebhookSink() as receiver:
        yield receiver


ASSOCIATIONS = ("sos-entrepreneur", "second-souffle", "60000-rebonds", "re-creer", "apesa")


def associations_file(folder: Path, webhooks: dict[str, str] | None = None) -> Path:
    """An associations.yaml: every association with an e-mail, some with a signed webhook."""
    webhooks = webhooks or {}
    os.environ["FAULT_WEBHOOK_SECRET"] = "fault-suite-webhook-secret-of-enough-length"
    text = "associations:\n"
    for association in ASSOCIATIONS:
        text += f"  {association}:\n    email: orientation@{association}.example\n"
        if association in webhooks:
            text += (
                f"    webhook_url: {webhooks[association]}\n"
                "    webhook_secret: env:FAULT_WEBHOOK_SECRET\n"
            )
    path = folder / "associations.yaml"
    path.write_text(text)
    return path


REFERENCE_IN_TEXT = re.compile(r"RB-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}")


#: Per reference, each delivery id seen and how many copies of it arrived.
Copies = dict[str, Counter[str]]


@dataclass
class Outcome:
    """What became of some questionnaires downstream: referrals, e-mails and webhooks each.

    E-mails and webhooks are told apart by their delivery id (`Message-ID`, `webhook-id`):
    two ids for one reference are two deliveries, a duplicate; one id arriving twice is the same
    delivery repeated after a crash (at-least-once), which the receiver recognises."""

    referrals: dict[str, set[str]]
    raw_referrals: int
    association_mails: Copies
    person_mails: Copies
    webhooks: Copies

    def _kinds(self) -> dict[str, Copies]:
        return {
            "association_mails": self.association_mails,
            "person_mails": self.person_mails,
            "webhooks": self.webhooks,
        }

    def missing(self, references: list[str], webhooks: bool = False) -> list[str]:
        return [
            ref for ref in references
            if not self.referrals.get(ref) or not self.association_mails.get(ref)
            or not self.person_mails.get(ref) or (webhooks and not self.webhooks.get(ref))
        ]  # fmt: skip

    def doubled(self, references: list[str]) -> dict[str, int]:
        """References with more than one distinct referral, e-mail or webhook delivery, per kind."""
        return {
            "referrals": sum(1 for ref in references if len(self.referrals.get(ref, ())) > 1),
            **{
                kind: sum(1 for ref in references if len(copies.get(ref, ())) > 1)
                for kind, copies in self._kinds().items()
            },
        }

    def repeated(self, references: list[str]) -> dict[str, int]:
        """Extra copies of one delivery (same id), per kind: sent, then the sender was killed
        before it could record so; the receiver deduplicates them by id."""
        return {
            f"{kind}_repeated_same_id": sum(
                n - 1 for ref in references for n in copies.get(ref, Counter()).values()
            )
            for kind, copies in self._kinds().items()
        }


def person_email(index: int) -> str:
    return f"person{index}@example.org"


def outcome(
    bootstrap: str,
    references: list[str],
    smtp: MailSink,
    hooks: WebhookSink | None,
    within_s: float,
    addresses: dict[str, str] | None = None,
) -> Outcome:
    """Wait (up to `within_s`) until every reference has its referral, both e-mails and (with
    `hooks`) its webhook, then give duplicates a few seconds to show and count everything.
    `addresses` gives each reference's person's e-mail address (by default the i-th
    reference's is `person_email(i)`)."""
    index = {ref: i for i, ref in enumerate(references)}
    address = addresses or {ref: person_email(i) for ref, i in index.items()}

    association: Copies = {}
    person: Copies = {}
    read = 0  # the inbox's messages counted so far: each is parsed once, however long the wait

    def count() -> Outcome:
        nonlocal read
        arrived = smtp.received()[read:]
        read += len(arrived)
        for mail in arrived:
            found = set(REFERENCE_IN_TEXT.findall(mail.text))
            message_id = str(mail.message["message-id"])
            for ref in found & index.keys():
                if address[ref] in mail.recipients:
                    person.setdefault(ref, Counter())[message_id] += 1
                elif any(r.startswith("orientation@") for r in mail.recipients):
                    association.setdefault(ref, Counter())[message_id] += 1
        calls: Copies = {}
        if hooks is not None:
            for call in hooks.received():
                if call.path.endswith("/ok"):
                    ref = json.loads(call.body).get("subject", "")
                    calls.setdefault(ref, Counter())[call.delivery_id] += 1
        return Outcome({}, 0, association, person, calls)

    seen = asyncio.run(
        read_topics(
            bootstrap, r"referrals\.(" + "|".join(re.escape(a) for a in ASSOCIATIONS) + ")",
            lambda s: set(references) <= s.ids_by_subject("referrals.").keys(),
            within_s=within_s, settle_s=0,
        )
    )  # fmt: skip
    referred = seen.ids_by_subject("referrals.")

    def pending() -> list[str]:
        found = count()
        found.referrals = referred  # count() reads deliveries only; the referrals were read above
        return found.missing(references, webhooks=hooks is not None)

    until(lambda: not pending(), within_s=within_s)
    time.sleep(3)  # a second e-mail or call, if any, would arrive now
    seen = asyncio.run(
        read_topics(
            bootstrap, r"referrals\.(" + "|".join(re.escape(a) for a in ASSOCIATIONS) + ")",
            lambda s: set(references) <= s.ids_by_subject("referrals.").keys(),
            within_s=30, settle_s=1,
        )
    )  # fmt: skip
    found = count()
    by_subject = seen.ids_by_subject("referrals.")
    found.referrals = {ref: ids for ref, ids in by_subject.items() if ref in index}
    found.raw_referrals = len(
        [r for r in seen.on("referrals.") if (r[2].get("ce_subject") in index)]
    )
    return found
