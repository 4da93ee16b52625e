"""The router's own work without Kafka: how far its Python lets it go, beside B2.

    python router_floor.py --bootstrap B --topic T --count N --database URL

Reads the first N records of T (the preloaded questionnaires) and, in this one process, times:

`alone`: the real `Router` on its real store, fed those records in the router's batches (read,
decide, store, outbox), every output handed to a sink that acknowledges at once: the router
with Kafka switched off, as intake's no-publish app is intake without its publish.
`least`: what any router must do per record and nothing more: read the event (the contract's
validation), decide, and serialise the decision, what of it intake and events may know (its
outcome, and its invitee when the person consented to invitations) and the offer's status; no
store, no outbox, no log line.

Prints one JSON line: {"records", "alone_per_s", "least_per_s"}. B2 only copies bytes; if
`least` falls short of a target ratio to B2, no router that reads, decides and writes as this
one does reaches it here.
"""

import argparse
import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import uuid5

from aiokafka import AIOKafkaConsumer, TopicPartition

from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import CaseFactKind, ReferralStatus, ReferralStatusV1
from rebond_contracts.topics import (
    DECISIONS,
    INVITEES,
    OUTCOMES,
    QUESTIONNAIRES,
    REFERRAL_STATUS,
    STATISTICS,
    Topic,
)
from rebond_kafka.testing import partitions_of
from rebond_observability.logging import configure_logging
from rebond_router.directory import DEFAULT_PATH, Directory, load_directory
from rebond_router.lifecycle import Router
from rebond_router.rules import decide, invitee_of, outcome_of
from rebond_router.statistics import case_fact
from rebond_router.store import Store, migrate
from rebond_sql.outbox import Message
from rebond_sql.types import Clock

Record = tuple[bytes, list[tuple[str, bytes]]]  # a Kafka record's value and headers
Output = tuple[str, str, bytes]  # topic, key, value
BATCH = 500  # the router's `batch_max_records`


class Acknowledged:
    """Where the router's outbox goes with Kafka switched off: every send acknowledged at once."""

    def __init__(self) -> None:
        self.sent: list[Output] = []

    async def send(self, message: Message) -> "asyncio.Future[None]":
        self.sent.append((message.topic, message.key, message.value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def bench_directory() -> Directory:
    """The production directory with every capacity soft, as round 1 measured it: under hard
    capacity (the default since issue 21) a bench's thousands of questionnaires in one week fill
    each association after a dozen, and the rest take the human queue's shorter path, which
    would flatter the rate and no longer compare with round 1's."""
    directory = load_directory(DEFAULT_PATH)
    return directory.model_copy(
        update={
            "associations": [
                a.model_copy(update={"capacity": "soft"}) for a in directory.associations
            ]
        }
    )


async def alone(
    records: Sequence[Record], database_url: str, sink: Acknowledged, clock: Clock
) -> float:
    """Records per second through the real `Router` and store, outputs to `sink`."""
    migrate(database_url)
    store = Store.from_url(database_url)
    await store.start()
    relay = store.relay(sink.send, clock, BATCH)
    router = Router(store, relay, bench_directory(), clock)
    try:
        started = time.perf_counter()
        for start in range(0, len(records), BATCH):
            events = [QUESTIONNAIRES.read(v, h) for v, h in records[start : start + BATCH]]
            await router.on_questionnaires(events)
        return len(records) / (time.perf_counter() - started)
    finally:
        await store.close()


def least_work(record: Record, directory: Directory, now: datetime) -> list[Output]:
    """One record's unavoidable work: read it, decide, serialise the decision, its outcome (and
    invitee), the offer and (with the person's consent) its statistics fact."""
    event = QUESTIONNAIRES.read(*record)
    decision = decide(event.id, event.data, now, directory, {}).decision
    outcome = outcome_of(decision)
    assert outcome is not None  # a main track's decision always has one
    reference = event.data.reference
    outputs: list[tuple[Topic, Envelope[Any]]] = [
        (DECISIONS, DECISIONS.envelope(
            decision, subject=reference, correlationid=event.correlationid,
            id=str(decision.decision_id),
        )),
        (OUTCOMES, OUTCOMES.envelope(
            outcome, subject=reference, correlationid=event.correlationid,
            id=str(uuid5(decision.decision_id, "outcome")),
        )),
    ]  # fmt: skip
    if (invitee := invitee_of(decision)) is not None:
        outputs.append((INVITEES, INVITEES.envelope(
            invitee, subject=reference, correlationid=event.correlationid,
            id=str(uuid5(decision.decision_id, "invitee")),
        )))  # fmt: skip
    keyed: list[tuple[Topic, Envelope[Any], str]] = []
    if (referral := decision.referral) is not None:
        offered = ReferralStatusV1(
            reference=reference,
            referral_id=referral.referral_id,
            association_id=referral.association_id,
            status=ReferralStatus.OFFERED,
            respond_by=referral.respond_by,
            at=now,
        )
        status_id = uuid5(referral.referral_id, ReferralStatus.OFFERED.value)
        outputs.append((REFERRAL_STATUS, REFERRAL_STATUS.envelope(
            offered, subject=reference, correlationid=event.correlationid, id=str(status_id),
        )))  # fmt: skip
        if event.data.questionnaire.consents.statistics:  # the offer's anonymous fact
            situation = event.data.questionnaire.situation
            fact = case_fact(
                status_id, CaseFactKind.OFFERED, situation.region, situation.stage,
                referral.association_id, now,
            )  # fmt: skip
            envelope = STATISTICS.envelope(
                fact.payload, subject=str(fact.id), correlationid=str(fact.id), id=str(fact.id)
            )
            keyed.append((STATISTICS, envelope, referral.association_id.value))
    written = []
    for topic, envelope, key in [(t, e, reference) for t, e in outputs] + keyed:
        envelope.kafka_headers()  # the router writes them too
        written.append((topic.name, key, envelope.kafka_value()))
    return written


def least(records: Sequence[Record], now: datetime) -> float:
    """Records per second of `least_work` alone."""
    directory = bench_directory()
    started = time.perf_counter()
    for record in records:
        least_work(record, directory, now)
    return len(records) / (time.perf_counter() - started)


async def first_records(bootstrap: str, topic: str, count: int) -> list[Record]:
    """The first `count` records of `topic` (all its partitions, from the beginning), or all
    it holds if fewer."""
    partitions = await partitions_of(bootstrap, [topic])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Record] = []
        while len(records) < count and not await _at_ends(consumer, ends):
            for batch in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                records.extend((r.value, list(r.headers)) for r in batch if r.value is not None)
        return records[:count]
    finally:
        await consumer.stop()


async def _at_ends(consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]) -> bool:
    return all([await consumer.position(tp) >= end for tp, end in ends.items()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default=QUESTIONNAIRES.name)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--database", required=True, help="the store's URL (a fresh SQLite file)")
    args = parser.parse_args()
    configure_logging("WARNING")  # as the bench runs the router
    records = asyncio.run(first_records(args.bootstrap, args.topic, args.count))
    now = datetime.now(UTC)
    rates = {
        "records": len(records),
        "alone_per_s": asyncio.run(alone(records, args.database, Acknowledged(), lambda: now)),
        "least_per_s": least(records, now),
    }
    print(json.dumps(rates), flush=True)


if __name__ == "__main__":
    main()
