"""The topic registry: every topic's name, key, payload, and the one service allowed to write it.

No service types a topic name: each looks its topics up here.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import Envelope, EnvelopeError
from rebond_contracts.payloads import (
    ConferenceV1,
    DeadLetterV1,
    DeliveryV1,
    InvitationV1,
    QuestionnaireCompletedV1,
    ReferralResponseV1,
    ReferralStatusV1,
    ReferralV1,
    RegistrationV1,
    RoutingDecisionV1,
    UnroutedReferralV1,
)


class Service(StrEnum):
    """The writers and readers of topics. `association` is each association's own client."""

    INTAKE = "intake"
    ROUTER = "router"
    NOTIFIER = "notifier"
    EVENTS = "events"
    ASSOCIATION = "association"


@dataclass(frozen=True)
class Topic:
    name: str
    key: str
    payload: type[BaseModel]
    event_type: str
    schema_version: int
    writer: Service
    readers: tuple[Service, ...]
    description: str
    #: Partitions when the topic is created; deploy tools may raise it.
    partitions: int = 3
    #: Services that may write on the writer's behalf (the notifier's answer page writes an
    #: association's answer for associations without IT). The writer stays the owner.
    delegates: tuple[Service, ...] = ()

    @property
    def source(self) -> str:
        """The CloudEvents `source` of every event on this topic: its writer."""
        return f"/rebond/{self.writer.value}"

    def envelope(
        self, data: BaseModel, *, subject: str, correlationid: str, id: str | None = None
    ) -> Envelope[BaseModel]:
        """Wrap `data` as an event of this topic (type, version and source filled in)."""
        if not isinstance(data, self.payload):
            raise TypeError(
                f"{self.name} carries {self.payload.__name__}, not {type(data).__name__}"
            )
        extra = {"id": id} if id is not None else {}
        return Envelope[self.payload](  # type: ignore[name-defined]
            source=self.source,
            type=self.event_type,
            subject=subject,
            correlationid=correlationid,
            schemaversion=self.schema_version,
            data=data,
            **extra,
        )

    def read(self, value: bytes | None, headers: Iterable[tuple[str, bytes]]) -> Envelope[Any]:
        """Parse a record of this topic; `EnvelopeError` says what is wrong with it."""
        headers = list(headers)
        declared = {name: raw for name, raw in headers if name in ("ce_type", "ce_schemaversion")}
        if declared.get("ce_type", self.event_type.encode()) != self.event_type.encode():
            raise EnvelopeError(
                f"{self.name} carries {self.event_type}, not {declared['ce_type']!r}"
            )
        if declared.get("ce_schemaversion", b"") != str(self.schema_version).encode():
            raise EnvelopeError(
                f"unsupported schema version {declared.get('ce_schemaversion')!r} for {self.event_type}"
            )
        return Envelope.from_kafka(value, headers, self.payload)


QUESTIONNAIRES = Topic(
    name="questionnaires.completed",
    key="submission reference",
    payload=QuestionnaireCompletedV1,
    event_type="fr.rebond.questionnaire.completed",
    schema_version=1,
    writer=Service.INTAKE,
    readers=(Service.ROUTER,),
    description="A person's answers, acknowledged to them with a reference.",
)

DECISIONS = Topic(
    name="routing.decisions",
    key="submission reference",
    payload=RoutingDecisionV1,
    event_type="fr.rebond.routing.decided",
    schema_version=1,
    writer=Service.ROUTER,
    readers=(Service.NOTIFIER, Service.INTAKE, Service.EVENTS),
    description="Which association suits the person, why, and the referral to send.",
)

REFERRAL_STATUS = Topic(
    name="referrals.status",
    key="submission reference",
    payload=ReferralStatusV1,
    event_type="fr.rebond.referral.status",
    schema_version=1,
    writer=Service.ROUTER,
    readers=(Service.INTAKE, Service.NOTIFIER),
    description="Each step of a referral's life: offered, accepted, declined, expired, unrouted.",
)

DELIVERIES = Topic(
    name="notifications.deliveries",
    key="submission reference",
    payload=DeliveryV1,
    event_type="fr.rebond.notification.delivery",
    schema_version=1,
    writer=Service.NOTIFIER,
    readers=(Service.INTAKE,),
    description="Outcome of each e-mail and webhook: sent, failed, dead-lettered.",
)

CONFERENCES = Topic(
    name="conferences.events",
    key="conference event id",
    payload=ConferenceV1,
    event_type="fr.rebond.conference.changed",
    schema_version=1,
    writer=Service.EVENTS,
    readers=(Service.NOTIFIER,),
    description="A Conférence du rebond scheduled, updated or cancelled (no personal data).",
)

REGISTRATIONS = Topic(
    name="conferences.registrations",
    key="conference event id",
    payload=RegistrationV1,
    event_type="fr.rebond.conference.registration",
    schema_version=1,
    writer=Service.EVENTS,
    readers=(Service.NOTIFIER,),
    description="Registrations confirmed, waitlisted, promoted, cancelled, or told of a change.",
)

INVITATIONS = Topic(
    name="conferences.invitations",
    key="submission reference",
    payload=InvitationV1,
    event_type="fr.rebond.conference.invitation",
    schema_version=1,
    writer=Service.EVENTS,
    readers=(Service.NOTIFIER,),
    description="Invitations to a conference for people who consented to them.",
)

UNROUTED = Topic(
    name="referrals.unrouted",
    key="submission reference",
    payload=UnroutedReferralV1,
    event_type="fr.rebond.referral.unrouted",
    schema_version=1,
    writer=Service.ROUTER,
    readers=(),
    description="The human queue: consenting people whom no association holds (no contact details).",
)


def referrals(association: AssociationId) -> Topic:
    """`referrals.<association_id>`: what one association, and only it, reads."""
    return Topic(
        name=f"referrals.{association.value}",
        key="submission reference",
        payload=ReferralV1,
        event_type="fr.rebond.referral.offered",
        schema_version=1,
        writer=Service.NOTIFIER,
        readers=(Service.ASSOCIATION,),
        description=f"Referrals for {association.value}, with only what the person agreed to share.",
    )


def responses(association: AssociationId) -> Topic:
    """`responses.<association_id>`: the topic itself says who answered."""
    return Topic(
        name=f"responses.{association.value}",
        key="submission reference",
        payload=ReferralResponseV1,
        event_type="fr.rebond.referral.answered",
        schema_version=1,
        writer=Service.ASSOCIATION,
        readers=(Service.ROUTER,),
        description=f"Accept or decline answers from {association.value}.",
        delegates=(Service.NOTIFIER,),
    )


def dead_letters(service: Service) -> Topic:
    """`deadletter.<service>`: what a consuming service could not process."""
    return Topic(
        name=f"deadletter.{service.value}",
        key="original key",
        payload=DeadLetterV1,
        event_type="fr.rebond.deadletter",
        schema_version=1,
        writer=service,
        readers=(),
        description=f"Messages {service.value} could not process, with the error.",
        partitions=1,
    )


def all_topics() -> list[Topic]:
    """Every topic Rebond uses, for creation, documentation and access rules."""
    return [
        QUESTIONNAIRES,
        DECISIONS,
        REFERRAL_STATUS,
        UNROUTED,
        DELIVERIES,
        CONFERENCES,
        REGISTRATIONS,
        INVITATIONS,
        *(referrals(a) for a in AssociationId),
        *(responses(a) for a in AssociationId),
        *(
            dead_letters(s)
            for s in (Service.ROUTER, Service.NOTIFIER, Service.INTAKE, Service.EVENTS)
        ),
    ]


def find(name: str) -> Topic:
    """The registered topic called `name`; KeyError when there is none."""
    for topic in all_topics():
        if topic.name == name:
            return topic
    raise KeyError(name)
