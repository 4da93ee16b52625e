"""Kafka entry points: read a record, call the lifecycle, let FastStream commit afterwards.

At-least-once: a handler returns (and its offset is committed: `AckPolicy.NACK_ON_ERROR`) only
after every output is acknowledged by Kafka (acks=all, idempotent producer). A record that cannot
be read, or fails permanently, or still fails after `retry_attempts` tries with capped
exponential backoff, goes to `deadletter.router` with the error and its original headers, and the
partition keeps flowing.
"""

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager, nullcontext

import structlog
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.publisher.usecase import DefaultPublisher
from pydantic import SkipValidation
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import EnvelopeError
from rebond_contracts.payloads import QuestionnaireCompletedV1, ReferralResponseV1
from rebond_contracts.topics import (
    DECISIONS,
    ERASURES,
    INVITEES,
    OUTCOMES,
    QUESTIONNAIRES,
    REFERRAL_STATUS,
    UNROUTED,
    Service,
    dead_letters,
    responses,
)
from rebond_kafka.backoff import Backoff
from rebond_kafka.records import keep_raw, keep_raw_batch, send_dead_letter
from rebond_kafka.security import kafka_security
from rebond_kafka.settings import bootstrap_servers
from rebond_router import privacy
from rebond_router.lifecycle import Rejected, Router
from rebond_router.settings import RouterSettings
from rebond_router.store import ConcurrentChange

log = structlog.get_logger(__name__)
DEAD_LETTERS = dead_letters(Service.ROUTER)
RESPONDERS: dict[str, AssociationId] = {responses(a).name: a for a in AssociationId}

#: Worth another try: the database or Kafka hiccuped, or another instance changed the row first.
TRANSIENT: tuple[type[BaseException], ...] = (
    KafkaError,
    OSError,
    TimeoutError,
    OperationalError,
    InterfaceError,
    IntegrityError,
    ConcurrentChange,
)


def new_broker(settings: RouterSettings) -> KafkaBroker:
    return KafkaBroker(
        bootstrap_servers(settings.kafka_bootstrap_servers),
        security=kafka_security(settings),
        acks="all",
        enable_idempotence=True,
        client_id="rebond-router",
        logger=None,
    )


class KafkaOutputs:
    """The lifecycle's `Outputs` on Kafka: one declared publisher per topic the router writes."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.publishers: dict[str, DefaultPublisher] = {
            topic.name: broker.publisher(
                topic.name, title=topic.name, description=topic.description, schema=topic.payload
            )
            for topic in (DECISIONS, OUTCOMES, INVITEES, REFERRAL_STATUS, UNROUTED, DEAD_LETTERS)
        }

    async def send(
        self, topic: str, key: str, value: bytes, headers: Mapping[str, str]
    ) -> "asyncio.Future[RecordMetadata]":
        """Hand the record to the producer; the future completes on Kafka's acknowledgement."""
        return await self.publishers[topic].publish(
            value,
            key=key.encode(),
            headers=dict(headers),
            correlation_id=headers.get("ce_correlationid"),
            no_confirm=True,
        )

    async def dead_letter(self, record: "ConsumerRecord[bytes, bytes]", error: str) -> None:
        await send_dead_letter(self.publishers[DEAD_LETTERS.name], Service.ROUTER, record, error)


async def with_retries(
    work: Callable[[], Awaitable[object]],
    attempts: int,
    backoff_s: float,
    backoff_max_s: float,
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Run `work`, retrying transient failures with capped exponential backoff, jittered (±20 %)
    so that the records of one batch, or two routers, do not retry in step.

    Raises `GaveUp` after `attempts` tries; other exceptions propagate at once. `sleep` is
    injectable so tests can see the delays without waiting for them.
    """
    delays = Backoff(first_s=min(backoff_s, backoff_max_s), cap_s=backoff_max_s)
    for attempt in range(1, attempts + 1):
        try:
            await work()
            return
        except TRANSIENT as error:
            if attempt == attempts:
                raise GaveUp(
                    f"{type(error).__name__} after {attempts} attempts: {error}"
                ) from error
            log.warning("transient_failure", what=what, attempt=attempt, error=type(error).__name__)
            await sleep(delays.next_delay())


class GaveUp(RuntimeError):
    """A transient failure outlasted the retries."""


RecordScope = Callable[["ConsumerRecord[bytes, bytes]"], AbstractContextManager[object]]


def subscribe(
    broker: KafkaBroker,
    router: Router,
    outputs: KafkaOutputs,
    settings: RouterSettings,
    record_scope: RecordScope = lambda _record: nullcontext(),
) -> None:
    """Declare the router's subscribers on `broker`. Questionnaires come in batches (one store
    transaction and one offset commit per batch, every output in flight together);
    `record_scope` gives each record of a batch its trace and log context."""

    async def handle(
        record: "ConsumerRecord[bytes, bytes]", work: Callable[[], Awaitable[object]]
    ) -> None:
        try:
            await with_retries(
                work,
                settings.retry_attempts,
                settings.retry_backoff_s,
                settings.retry_backoff_max_s,
                record.topic,
            )
        except (Rejected, GaveUp) as error:
            await outputs.dead_letter(record, str(error))
        except Exception as error:  # a permanent failure must not block the partition
            log.exception("handler_failed", topic=record.topic, offset=record.offset)
            await outputs.dead_letter(record, f"{type(error).__name__}: {error}")

    @broker.subscriber(
        QUESTIONNAIRES.name,
        group_id=settings.group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        decoder=keep_raw_batch,
        title=QUESTIONNAIRES.name,
        description="Orient each questionnaire to an association.",
    )
    async def on_questionnaires(
        body: SkipValidation[QuestionnaireCompletedV1], msg: KafkaMessage
    ) -> None:
        # `body` is the batch's raw bytes (`keep_raw_batch`); it is typed per record because the
        # AsyncAPI document describes the channel's messages, one questionnaire each.
        records: tuple[ConsumerRecord[bytes, bytes], ...] = msg.raw_message  # type: ignore[assignment]
        readable: list[ConsumerRecord[bytes, bytes]] = []
        events = []
        for record in records:
            try:
                events.append(QUESTIONNAIRES.read(record.value, record.headers))
            except EnvelopeError as error:
                with record_scope(record):
                    await outputs.dead_letter(record, str(error))
                continue
            readable.append(record)
        if not events:
            return
        try:
            await with_retries(
                lambda: router.on_questionnaires(events, scope=lambda i: record_scope(readable[i])),
                settings.retry_attempts,
                settings.retry_backoff_s,
                settings.retry_backoff_max_s,
                QUESTIONNAIRES.name,
            )
        except GaveUp as error:  # the store or Kafka stayed down: as each record would have
            for record in readable:
                with record_scope(record):
                    await outputs.dead_letter(record, str(error))
        except Exception:  # one record fails for good: find it, one record at a time
            log.warning("batch_failed_one_by_one", records=len(readable))
            for record, event in zip(readable, events, strict=True):
                with record_scope(record):
                    await handle(record, functools.partial(router.on_questionnaire, event))

    @broker.subscriber(
        *RESPONDERS,
        group_id=settings.group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=keep_raw,
        title="responses",
        description="Each association's accept or decline; the topic says who answered.",
    )
    async def on_response(body: SkipValidation[ReferralResponseV1], msg: KafkaMessage) -> None:
        record: ConsumerRecord[bytes, bytes] = msg.raw_message  # type: ignore[assignment]
        association = RESPONDERS[record.topic]
        try:
            event = responses(association).read(record.value, record.headers)
        except EnvelopeError as error:
            await outputs.dead_letter(record, str(error))
            return
        with structlog.contextvars.bound_contextvars(
            reference=event.subject, event_id=event.id, association=association.value
        ):
            await handle(record, lambda: router.on_response(association, event))

    @broker.subscriber(
        ERASURES.name,
        group_id=settings.group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=keep_raw,
        title=ERASURES.name,
        description="Stop the referral of a person who withdrew and drop its contact copy.",
    )
    async def on_erasure(msg: KafkaMessage) -> None:
        record: ConsumerRecord[bytes, bytes] = msg.raw_message  # type: ignore[assignment]
        try:
            event = ERASURES.read(record.value, record.headers)
        except EnvelopeError as error:
            await outputs.dead_letter(record, str(error))
            return
        with structlog.contextvars.bound_contextvars(reference=event.subject, event_id=event.id):
            await handle(
                record, lambda: privacy.erase(router.store, event.data.reference, router.clock())
            )
