"""Kafka entry points (`rebond_kafka.consume.subscribe`): the router's invitees (people who
consented to invitations, with only what an invitation needs: events never sees anyone else's
decision), and erasures.

At least once: an offset is committed only once its handler returned, so an invitee's offset
moves on only after the invitation is stored and Kafka acknowledged it. A redelivered invitee
finds the invitation already stored and publishes nothing new. A record the contract refuses
goes to `deadletter.events` and the partition keeps flowing.
"""

import structlog
from faststream.kafka import KafkaBroker

from rebond_contracts.payloads import ErasureRequestedV1, InviteeV1, PeerRequestV1
from rebond_contracts.topics import ERASURES, INVITEES, PEER_REQUESTS
from rebond_events.community import Community
from rebond_events.conferences import Conferences
from rebond_kafka.consume import DeadLetters, Received, subscribe

log = structlog.get_logger(__name__)


def subscribe_events(
    broker: KafkaBroker,
    conferences: Conferences,
    community: Community,
    dead_letters: DeadLetters,
    group_id: str,
) -> None:
    """Declare the events service's subscribers on `broker`; each record's trace and log
    context comes from the observability middleware (`Observability.instrument`)."""

    async def on_invitee(received: Received[InviteeV1]) -> None:
        invited = await conferences.invite(
            received.data.reference, received.event.correlationid, received.data.contact
        )
        log.info("invitation_considered", invited=invited)

    async def on_peer_request(received: Received[PeerRequestV1]) -> None:
        match_id = await community.request_peer(received.data)
        log.info("peer_request_considered", matched=match_id is not None)

    async def on_erasure(received: Received[ErasureRequestedV1]) -> None:
        await conferences.erase(received.data.reference)

    subscribe(
        broker, INVITEES, on_invitee, dead_letters=dead_letters, group_id=group_id,
        description="Invite people who consented to invitations to a nearby conference.",
    )  # fmt: skip
    subscribe(
        broker, PEER_REQUESTS, on_peer_request, dead_letters=dead_letters,
        group_id=f"{group_id}.peers",
        description="Introduce a person who asked for a peer to a volunteer of their region.",
    )  # fmt: skip
    subscribe(
        broker, ERASURES, on_erasure, dead_letters=dead_letters,
        group_id=f"{group_id}.erasures",
        description="Delete the invitations of a person who withdrew.",
    )  # fmt: skip
