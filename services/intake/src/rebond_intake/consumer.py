"""Kafka entry point: keep each reference's submission, routing outcomes, referral statuses,
deliveries and peer-match steps (none of these topics carries contact details, a message or the distress answer:
intake faces the internet, and the decisions themselves are the notifier's alone).

One subscriber (`rebond_kafka.consume.subscribe`) reads the five topics in batches: each record
read by its topic's contract, an unreadable one sent to `deadletter.intake` (the partition flows
on). At-least-once: the batch's offsets are committed only once its records are stored, in one
store transaction (duplicates are dropped by event id); while the store is down the partition
waits for it (`store.patiently`). Intake's own `questionnaires.completed` comes back with its
reference and time only (`ReceivedView`): the answers are the router's business.
"""

from collections.abc import Sequence

import structlog
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from rebond_contracts.payloads import REFERENCE_PATTERN
from rebond_contracts.topics import (
    DELIVERIES,
    OUTCOMES,
    PEER_MATCHES,
    QUESTIONNAIRES,
    REFERRAL_STATUS,
    Service,
)
from rebond_intake.store import StatusStore, patiently
from rebond_intake.timeline import Record, received, record_of
from rebond_kafka.brokers import durable_broker
from rebond_kafka.consume import (
    Batch,
    BatchHandler,
    DeadLetters,
    Received,
    RecordScope,
    no_scope,
    subscribe,
)

log = structlog.get_logger(__name__)
CONSUMED = (OUTCOMES, REFERRAL_STATUS, DELIVERIES, PEER_MATCHES)

#: The broker answers a fetch once it has 64 KiB or after aiokafka's 500 ms: a status is stored
#: up to half a second after it is published (this replica shows its own submissions at once,
#: `RecentlyReceived`; the person reads their confirmation meanwhile), and in return a busy
#: intake reads a few large batches a second rather than hundreds of small ones, each with its
#: store transaction and offset commit. At 500 submissions/s that took intake from about 90 to
#: 78 % of a core, and the broker's own CPU from about 17 to 12 %. Idle, a fetch every 500 ms
#: rather than every 100 ms took intake from about 0.8 to 0.4 % of a core (2026-12-07).
STATUS_BATCH = Batch(max_records=500, fetch_min_bytes=64 * 1024)


class ReceivedView(BaseModel):
    """What the status needs of a questionnaire event (the answers are skipped)."""

    model_config = ConfigDict(extra="ignore")

    reference: str = Field(pattern=REFERENCE_PATTERN)
    received_at: AwareDatetime


def build_consumer(
    bootstrap_servers: str,
    store: StatusStore,
    *,
    group_id: str = "rebond-intake",
    security: BaseSecurity | None = None,
    batch: Batch = STATUS_BATCH,
    record_scope: RecordScope = no_scope,
) -> KafkaBroker:
    """A broker (not connected) whose one subscriber stores every status event of the five
    topics, a batch at a time; `record_scope` gives each record its trace and log context.

    One consumer for the five topics, not one each: one group member, one fetch and one commit
    serve them all (at 20 submissions/s intake's CPU went from 29 to 24 %)."""
    broker = durable_broker(bootstrap_servers, "rebond-intake-status", security=security)
    subscribe(
        broker,
        (QUESTIONNAIRES, *CONSUMED),
        status_handler(store),
        dead_letters=DeadLetters(broker, Service.INTAKE),
        group_id=group_id,
        title="intake:status",
        description="Each submission read back (the status shows it received), and "
        f"{', '.join(t.name for t in CONSUMED)} for the person's status timeline.",
        batch=batch,
        view={QUESTIONNAIRES: ReceivedView},
        record_scope=record_scope,
    )
    return broker


def status_of(received_: Received[BaseModel]) -> Record:
    """The status record of one event read: a submission's reception, or what `record_of`
    keeps of a routing outcome, referral status, delivery or peer-match step."""
    data = received_.data
    if isinstance(data, ReceivedView):
        return received(received_.event.id, data.reference, data.received_at)
    return record_of(received_.event.id, data)


def status_handler(store: StatusStore) -> BatchHandler[BaseModel]:
    """The handler of a batch: its records kept in one store transaction (waiting for the
    store as long as it is down), then each logged in its own trace and log context."""

    async def handle(batch: Sequence[Received[BaseModel]]) -> None:
        statuses = [status_of(received_) for received_ in batch]
        new = await patiently(lambda: store.add_many(statuses))
        for received_, status in zip(batch, statuses, strict=True):
            with received_.scope():
                log.info("status_stored" if status.event_id in new else "status_duplicate")

    return handle
