"""Kafka entry points: each record read by its topic's contract (`rebond_kafka.consume`), the
lifecycle called, the offset committed afterwards.

At-least-once: a handler returns (and its offset is committed) only after every output is
acknowledged by Kafka (acks=all, idempotent producer). A record that cannot be read
(`subscribe` dead-letters it), or fails permanently, or still fails after `retry_attempts`
tries (`Retries`), goes to `deadletter.router` with the error and its original headers, and the
partition keeps flowing.
"""

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import stamina
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from stamina.instrumentation import RetryDetails

from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import (
    CaseAssignedV1,
    CaseClosedV1,
    DirectoryAppliedV1,
    DirectoryOverrideV1,
    ErasureRequestedV1,
    FollowUpAnsweredV1,
    QuestionnaireCompletedV1,
    ReferralOutcomeV1,
    ReferralResponseV1,
)
from rebond_contracts.topics import (
    APPLIED,
    ASSIGNMENTS,
    DECISIONS,
    ERASURES,
    FOLLOW_UPS,
    INVITEES,
    OUTCOMES,
    OVERRIDES,
    PEER_REQUESTS,
    QUESTIONNAIRES,
    REFERRAL_STATUS,
    STATISTICS,
    UNROUTED,
    Topic,
    responses,
)
from rebond_kafka.brokers import durable_broker
from rebond_kafka.consume import Batch, DeadLetters, Received, RecordScope, no_scope, subscribe
from rebond_kafka.security import aiokafka_options, kafka_security
from rebond_kafka.settings import bootstrap_servers
from rebond_router.lifecycle import ConcurrentChange, Router
from rebond_router.overrides import Overrides
from rebond_router.referral import Rejected
from rebond_router.settings import RouterSettings
from rebond_sql.outbox import Message

log = structlog.get_logger(__name__)
RESPONDERS: dict[str, AssociationId] = {responses(a).name: a for a in AssociationId}

#: Worth another try: the database or Kafka hiccuped, or another instance changed the row first.
TRANSIENT: tuple[type[Exception], ...] = (
    KafkaError,
    OSError,
    TimeoutError,
    OperationalError,
    InterfaceError,
    IntegrityError,
    ConcurrentChange,
)
#: How long a batch of questionnaires waits for the overrides to be read after a start, before
#: it is given back to be read again (well within the consumer's poll interval).
OVERRIDES_CATCH_UP_S = 30.0
#: Each delay is lengthened by up to this share of the first delay, at random, so that the
#: records of one batch, or two routers, do not retry in step.
JITTER = 0.2


def new_broker(settings: RouterSettings) -> KafkaBroker:
    """The router's broker: acks=all and idempotent (`durable_broker`), which the
    at-least-once above relies on."""
    return durable_broker(
        settings.kafka_bootstrap_servers, "rebond-router", security=kafka_security(settings)
    )


class KafkaOutputs:
    """Where the outbox goes: one declared publisher per topic the router writes."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.publishers: dict[str, DefaultPublisher] = {
            topic.name: broker.publisher(
                topic.name, title=topic.name, description=topic.description, schema=topic.payload
            )
            for topic in (
                DECISIONS,
                OUTCOMES,
                INVITEES,
                PEER_REQUESTS,
                REFERRAL_STATUS,
                UNROUTED,
                STATISTICS,
                APPLIED,
            )
        }

    async def send(self, message: Message) -> Awaitable[object]:
        """Hand the record to the producer; the awaitable completes on Kafka's acknowledgement
        (`rebond_sql.outbox.Send`)."""
        return await self.publishers[message.topic].publish(
            message.value,
            key=message.key.encode(),
            headers=dict(message.headers),
            correlation_id=message.headers.get("ce_correlationid"),
            no_confirm=True,
        )

    async def send_applied(self, applied: DirectoryAppliedV1, event_id: str) -> None:
        """An override in force, on `directory.applied` (keyed by association), published
        directly, not through the outbox: it tells of memory, not of the store, and the next
        start says it again (`rebond_router.overrides`). Returns on Kafka's acknowledgement."""
        key = applied.association_id.value
        envelope = APPLIED.envelope(applied, subject=key, correlationid=key, id=event_id)
        await self.publishers[APPLIED.name].publish(
            envelope.kafka_value(),
            key=key.encode(),
            headers=envelope.kafka_headers(),
            correlation_id=key,
        )


async def topic_bounds(settings: RouterSettings, topic: Topic) -> dict[int, tuple[int, int]]:
    """Each partition of `topic`: its first offset still kept and its end, asked of the broker
    with a bare consumer (no group) on the router's connection (`rebond_router.overrides`)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(settings.kafka_bootstrap_servers),
        enable_auto_commit=False,
        client_id="rebond-router-bounds",
        **aiokafka_options(settings),
    )
    await consumer.start()
    try:
        await consumer.topics()  # the cluster's metadata, with the topic's partitions
        partitions = [
            TopicPartition(topic.name, p) for p in consumer.partitions_for_topic(topic.name) or ()
        ]
        begins = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: (begins[tp], ends[tp]) for tp in partitions}


class GaveUp(RuntimeError):
    """A transient failure outlasted the retries."""


def log_retry(details: RetryDetails) -> None:
    """stamina's hook: one line per retry, naming the error's type only (its text may quote a
    statement's parameters, which hold personal data; stamina's own hooks would log it)."""
    log.warning(
        "transient_failure",
        attempt=details.retry_num,
        error=type(details.caused_by).__name__,
        retry_in_s=round(details.wait_for, 3),
    )


@dataclass(frozen=True)
class Retries:
    """Bounded retries of a unit of work with stamina: `attempts` tries, waiting `first_s`,
    then twice that, up to `cap_s` (each plus up to `JITTER` of `first_s`, at random), for
    `TRANSIENT` failures only; other failures propagate at once. `stamina.set_testing` skips
    the waits."""

    attempts: int
    first_s: float
    cap_s: float

    @classmethod
    def of(cls, settings: RouterSettings) -> "Retries":
        return cls(settings.retry_attempts, settings.retry_backoff_s, settings.retry_backoff_max_s)

    async def run(self, work: Callable[[], Awaitable[object]], what: str) -> None:
        """Run `work`; `GaveUp` after `attempts` transient failures.

        The first try is a plain call: stamina's retry context (and the log context naming
        `what`) cost a few hundred microseconds a call, on the path of every record and batch,
        and only a failure needs them. That failure is then stamina's first attempt, raised
        again inside it, so that the retries, their delays and their log lines are those of a
        context entered from the start."""
        try:
            await work()
            return
        except TRANSIENT as error:
            failed: BaseException | None = error
        first = min(self.first_s, self.cap_s)
        with structlog.contextvars.bound_contextvars(what=what):
            try:
                async for attempt in stamina.retry_context(
                    on=TRANSIENT, attempts=self.attempts, timeout=None, wait_initial=first,
                    wait_max=self.cap_s, wait_jitter=JITTER * first, wait_exp_base=2,
                ):  # fmt: skip
                    with attempt:
                        if failed is not None:
                            first_failure, failed = failed, None
                            raise first_failure
                        await work()
            except TRANSIENT as last:
                raise GaveUp(
                    f"{type(last).__name__} after {self.attempts} attempts: {last}"
                ) from last


@dataclass(frozen=True)
class Handlers:
    """What each subscription does with what it reads: the lifecycle called with retries, and
    the record dead-lettered when it is refused, fails for good, or outlasts the retries."""

    router: Router
    dead_letters: DeadLetters
    retries: Retries
    overrides: Overrides | None = None

    async def on_questionnaires(self, batch: Sequence[Received[QuestionnaireCompletedV1]]) -> None:
        """The batch in one go; if it fails for good, one record at a time, to find the one.
        Not before the live overrides written before this start are read (else the batch is
        read again): a paused association stays paused across a restart."""
        if self.overrides is not None and not self.overrides.ready:
            await asyncio.wait_for(self.overrides.caught_up(), OVERRIDES_CATCH_UP_S)
        events = [received.event for received in batch]
        try:
            await self.retries.run(
                lambda: self.router.on_questionnaires(events, scope=lambda i: batch[i].scope()),
                QUESTIONNAIRES.name,
            )
        except GaveUp as error:  # the store or Kafka stayed down: as each record would have
            for received in batch:
                with received.scope():
                    await self.dead_letters.send(received.record, str(error))
        except Exception:  # one record fails for good: find it, one record at a time
            log.warning("batch_failed_one_by_one", records=len(batch))
            for received in batch:
                with received.scope():
                    work = functools.partial(self.router.on_questionnaire, received.event)
                    await self.handle(received, work)

    async def on_response(self, received: Received[ReferralResponseV1 | ReferralOutcomeV1]) -> None:
        """The topic says which association answered; the event's type says whether it is an
        accept or decline, or what happened after an acceptance (`ReferralOutcomeV1`)."""
        association = RESPONDERS[received.topic.name]
        # An envelope's type is its payload's: the cast only tells mypy what isinstance found.
        work: Callable[[], Awaitable[object]]
        if isinstance(received.data, ReferralOutcomeV1):
            outcome = cast(Envelope[ReferralOutcomeV1], received.event)
            work = functools.partial(self.router.on_outcome, association, outcome)
        else:
            response = cast(Envelope[ReferralResponseV1], received.event)
            work = functools.partial(self.router.on_response, association, response)
        with structlog.contextvars.bound_contextvars(association=association.value):
            await self.handle(received, work)

    async def on_follow_up(self, received: Received[FollowUpAnsweredV1]) -> None:
        await self.handle(received, lambda: self.router.on_follow_up(received.event))

    async def on_case(self, received: Received[CaseAssignedV1 | CaseClosedV1]) -> None:
        """A coordinator's assignment or closure of a queued case; a case that is unknown,
        erased or not queued is dead-lettered with the reason (`Rejected`)."""
        data = received.data
        if isinstance(data, CaseAssignedV1):
            await self.handle(received, lambda: self.router.on_assignment(data))
        else:
            await self.handle(received, lambda: self.router.on_closure(data))

    async def on_override(self, received: Received[DirectoryOverrideV1]) -> None:
        """A live override of the directory; one the router cannot apply is dead-lettered."""
        assert self.overrides is not None  # subscribed only with them
        overrides = self.overrides
        with structlog.contextvars.bound_contextvars(association=received.data.association_id):
            await self.handle(received, lambda: overrides.on_override(received.data))
        overrides.read(received.record.partition, received.record.offset)

    async def on_erasure(self, received: Received[ErasureRequestedV1]) -> None:
        await self.handle(received, lambda: self.router.on_erasure(received.data.reference))

    async def handle(self, received: Received[Any], work: Callable[[], Awaitable[object]]) -> None:
        """Retry `work`, and dead-letter the record when it is refused or fails for good."""
        try:
            await self.retries.run(work, received.topic.name)
        except (Rejected, GaveUp) as error:
            await self.dead_letters.send(received.record, str(error))
        except Exception as error:  # a permanent failure must not block the partition
            log.exception(
                "handler_failed", topic=received.topic.name, offset=received.record.offset
            )
            await self.dead_letters.send(received.record, f"{type(error).__name__}: {error}")


def subscribe_router(
    broker: KafkaBroker,
    router: Router,
    dead_letters: DeadLetters,
    settings: RouterSettings,
    record_scope: RecordScope = no_scope,
    overrides: Overrides | None = None,
) -> None:
    """Declare the router's subscribers on `broker` (with `overrides`, the reader of
    `directory.overrides`: without a consumer group, from the beginning at every start, see
    `rebond_router.overrides`). Questionnaires come in batches (one store
    transaction and one offset commit per batch, every output in flight together), each record
    of which enters its trace and log context (`record_scope`); single records get theirs from
    the observability middleware (`Observability.instrument`)."""
    handlers = Handlers(router, dead_letters, Retries.of(settings), overrides)
    group = settings.group_id
    subscribe(
        broker, QUESTIONNAIRES, handlers.on_questionnaires, dead_letters=dead_letters,
        group_id=group, batch=Batch(settings.batch_max_records, settings.batch_timeout_ms),
        record_scope=record_scope, description="Orient each questionnaire to an association.",
    )  # fmt: skip
    subscribe(
        broker, [responses(a) for a in AssociationId], handlers.on_response,
        dead_letters=dead_letters, group_id=group, title="responses",
        description="Each association's accept or decline, and what happened after it accepted; "
        "the topic says who answered.",
    )  # fmt: skip
    subscribe(
        broker, FOLLOW_UPS, handlers.on_follow_up, dead_letters=dead_letters, group_id=group,
        description="The person's answer to the follow-up: a \"no\" puts the case in the human "
        "queue.",
    )  # fmt: skip
    subscribe(
        broker, ASSIGNMENTS, handlers.on_case, dead_letters=dead_letters, group_id=group,
        description="A coordinator assigns a queued case to an association, or closes it.",
    )  # fmt: skip
    subscribe(
        broker, ERASURES, handlers.on_erasure, dead_letters=dead_letters, group_id=group,
        description="Stop the referral of a person who withdrew and drop its contact copy.",
    )  # fmt: skip
    if overrides is not None:
        subscribe(
            broker, OVERRIDES, handlers.on_override, dead_letters=dead_letters, group_id=None,
            description="Live pause, weekly capacity and answer deadline over directory.yaml.",
        )  # fmt: skip
