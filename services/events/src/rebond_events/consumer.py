"""Kafka entry points (`rebond_kafka.consume.subscribe`): the router's invitees (people who
consented to invitations, with only what an invitation needs: events never sees anyone else's
decision), its peer requests, and erasures.

Invitees and peer requests come in batches (`Batch`): one store transaction, one outbox
publication and one offset commit per batch, instead of each record's own through FastStream's
per-message path (most of this service's CPU per questionnaire, for records that mostly send
nothing). The records of a batch are handled in order in that transaction, each seeing what
those before it wrote, so a batch decides what one record at a time would (`inviting.invite_all`,
`Community.request_peers`).

At least once: an offset is committed only once its handler returned, so an invitee's offset
moves on only after the invitation is stored and Kafka acknowledged it. A batch that fails on
a passing failure (the store or Kafka) is read again whole: a redelivered invitee finds the
invitation already stored and publishes nothing new, a redelivered request finds itself stored.
A batch that fails otherwise is done again one record at a time, each in its own transaction,
so that the record that can never succeed is dead-lettered (`deadletter.events`) and the others
go through. A record the contract refuses is dead-lettered by `subscribe`, and the partition
keeps flowing.
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import structlog
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from rebond_contracts.payloads import ErasureRequestedV1, InviteeV1, PeerRequestV1
from rebond_contracts.topics import ERASURES, INVITEES, PEER_REQUESTS
from rebond_events.community import Community
from rebond_events.conferences import Conferences
from rebond_events.inviting import Invitee
from rebond_kafka.consume import Batch, DeadLetters, Received, RecordScope, no_scope, subscribe
from rebond_observability import current_trace

log = structlog.get_logger(__name__)
M = TypeVar("M", bound=BaseModel)

#: The store or Kafka failed for now: the batch is read again rather than a record given up.
PASSING: tuple[type[Exception], ...] = (
    KafkaError, OSError, TimeoutError, OperationalError, InterfaceError,
)  # fmt: skip
#: One record alone: also another instance's concurrent write (the batch read again sees it).
PASSING_ALONE: tuple[type[Exception], ...] = (*PASSING, IntegrityError)


def trace_of(received: Received[M]) -> str | None:
    """The `traceparent` of `received`'s span (its own continued), for what it causes: the
    batch's transaction and publication run outside any one record's span."""
    with received.scope():
        trace = current_trace()
    return trace.header() if trace is not None else None


def said_of(received: Received[M]) -> dict[str, str]:
    """What a record's log line after its batch names it by (the context a record handled
    alone has bound): its reference and event id, nothing personal."""
    return {"reference": received.event.subject, "event_id": received.event.id}


async def in_batch(
    batch: Sequence[Received[M]],
    together: Callable[[], Awaitable[object]],
    alone: Callable[[Received[M]], Awaitable[object]],
    dead_letters: DeadLetters,
) -> None:
    """`together` (the batch in one transaction); if it fails other than passingly, `alone`
    for each record in its own transaction and log context: a record that fails passingly (or
    on a concurrent write, `IntegrityError`) raises, and the batch is read again; one that fails
    otherwise is dead-lettered with its error, and the next one is handled."""
    try:
        await together()
    except PASSING:
        raise
    except Exception as error:
        log.warning("batch_failed_one_by_one", records=len(batch), error=type(error).__name__)
        for received in batch:
            with received.scope():
                try:
                    await alone(received)
                except PASSING_ALONE:
                    raise
                except Exception as failure:  # a record that can never succeed
                    log.warning("record_dead_lettered", error=type(failure).__name__)
                    await dead_letters.send(received.record, f"{type(failure).__name__}: {failure}")


def subscribe_events(
    broker: KafkaBroker,
    conferences: Conferences,
    community: Community,
    dead_letters: DeadLetters,
    group_id: str,
    batch: Batch,
    record_scope: RecordScope = no_scope,
) -> None:
    """Declare the events service's subscribers on `broker`: invitees and peer requests in
    batches of `batch`, what each record causes carrying its trace (`record_scope`, `trace_of`),
    and each entering its log context too when handled one at a time; erasures one record at a time, in the context the observability
    middleware gives them (`Observability.instrument`)."""

    async def on_invitees(received: Sequence[Received[InviteeV1]]) -> None:
        async def together() -> None:
            invited = await conferences.invite_all([
                Invitee(one.data.reference, one.event.correlationid, one.data.contact,
                        trace_of(one))
                for one in received
            ])  # fmt: skip
            for one, done in zip(received, invited, strict=True):
                log.info("invitation_considered", invited=done, **said_of(one))

        async def alone(one: Received[InviteeV1]) -> None:
            data = one.data
            invited = await conferences.invite(
                data.reference, one.event.correlationid, data.contact
            )
            log.info("invitation_considered", invited=invited)

        await in_batch(received, together, alone, dead_letters)

    async def on_peer_requests(received: Sequence[Received[PeerRequestV1]]) -> None:
        async def together() -> None:
            matched = await community.request_peers([(one.data, trace_of(one)) for one in received])
            for one, match_id in zip(received, matched, strict=True):
                log.info("peer_request_considered", matched=match_id is not None, **said_of(one))

        async def alone(one: Received[PeerRequestV1]) -> None:
            match_id = await community.request_peer(one.data)
            log.info("peer_request_considered", matched=match_id is not None)

        await in_batch(received, together, alone, dead_letters)

    async def on_erasure(received: Received[ErasureRequestedV1]) -> None:
        await conferences.erase(received.data.reference)

    subscribe(
        broker, INVITEES, on_invitees, dead_letters=dead_letters, group_id=group_id,
        batch=batch, record_scope=record_scope,
        description="Invite people who consented to invitations to a nearby conference.",
    )  # fmt: skip
    subscribe(
        broker, PEER_REQUESTS, on_peer_requests, dead_letters=dead_letters,
        group_id=f"{group_id}.peers", batch=batch, record_scope=record_scope,
        description="Introduce a person who asked for a peer to a volunteer of their region.",
    )  # fmt: skip
    subscribe(
        broker, ERASURES, on_erasure, dead_letters=dead_letters,
        group_id=f"{group_id}.erasures",
        description="Delete the invitations of a person who withdrew.",
    )  # fmt: skip
