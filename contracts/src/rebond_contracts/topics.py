"""The topic registry: every topic's name, key, payload, and the one service allowed to write it.

No service types a topic name: each looks its topics up here.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol
from uuid import NAMESPACE_URL, uuid5

from pydantic import BaseModel

from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import DataT, Envelope, EnvelopeError, envelope_class
from rebond_contracts.payloads import (
    CaseAssignedV1,
    CaseClosedV1,
    CaseFactV1,
    CommunityMailV1,
    ConferenceV1,
    DeadLetterV1,
    DeliveryV1,
    DirectoryAppliedV1,
    DirectoryOverrideV1,
    ErasureRequestedV1,
    FollowUpAnsweredV1,
    InvitationV1,
    InviteeV1,
    PeerMatchV1,
    PeerRequestV1,
    QuestionnaireCompletedV1,
    ReferralOutcomeV1,
    ReferralResponseV1,
    ReferralStatusV1,
    ReferralV1,
    ReferralWithdrawnV1,
    RegistrationV1,
    RoutingDecisionV1,
    RoutingOutcomeV1,
    UnroutedReferralV1,
)


class Service(StrEnum):
    """The writers and readers of topics. `association` is each association's own client."""

    INTAKE = "intake"
    ROUTER = "router"
    NOTIFIER = "notifier"
    EVENTS = "events"
    #: The staff console (issues 21 and 22): the human queue and the associations' inbox.
    COORDINATION = "coordination"
    ASSOCIATION = "association"


HOUR_MS = 60 * 60 * 1000
DAY_MS = 24 * HOUR_MS

#: Segments of the topics with personal data roll at least this often. Kafka deletes a whole
#: segment once its newest record is older than the retention, and rolls a segment by time
#: only every `segment.ms` (7 days by default): a record can thus outlive its retention by a
#: segment's span. Twelve hours bounds that overstay.
PERSONAL_SEGMENT_MS = 12 * HOUR_MS
#: Kafka's default `log.retention.check.interval.ms`: how late, at most, the broker looks.
RETENTION_CHECK_MS = 5 * 60 * 1000

#: How long the pipeline's topics with personal data keep a record: their readers take it
#: within seconds; four days let a reader stopped over a long holiday weekend (Ascension's
#: Thursday to Sunday) catch up without anyone on call. A longer outage loses what it missed
#: (the alerts on consumer lag, docs/operations.md, fire long before).
PIPELINE_RETENTION_MS = 4 * DAY_MS
#: How long `referrals.<association_id>` keeps a referral (see `referrals`).
REFERRAL_RETENTION_MS = 10 * DAY_MS


@dataclass(frozen=True)
class EventKind:
    """A further event type a topic carries besides its main one (its own `ce_type`)."""

    event_type: str
    payload: type[BaseModel]
    schema_version: int = 1


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
    #: Kafka's `retention.ms` for the topic (None: the broker's default); kafkactl applies it.
    retention_ms: int | None = None
    #: Whether Kafka keeps only the latest record per key, for ever (`cleanup.policy=compact`):
    #: for a topic whose latest record per key is the whole truth, read from its beginning.
    compacted: bool = False
    #: Whether records hold personal data (names, contact details, answers, free text): such a
    #: topic rolls its segments every `PERSONAL_SEGMENT_MS`, counts in `erasure_window_ms`, and
    #: its dead letters leave the original value out.
    personal_data: bool = False
    #: Further event types on this topic, each with its own payload and `ce_type` (additive:
    #: readers of the main type dead-letter nothing, they are told by `read`).
    also: tuple[EventKind, ...] = ()

    @property
    def segment_ms(self) -> int | None:
        """Kafka's `segment.ms` for the topic (None: the broker's default)."""
        return PERSONAL_SEGMENT_MS if self.personal_data else None

    def kinds(self) -> list[EventKind]:
        """Every event type this topic carries, the main one first."""
        return [EventKind(self.event_type, self.payload, self.schema_version), *self.also]

    @property
    def source(self) -> str:
        """The CloudEvents `source` of every event on this topic: its writer."""
        return f"/rebond/{self.writer.value}"

    def envelope(
        self, data: DataT, *, subject: str, correlationid: str, id: str | None = None
    ) -> Envelope[DataT]:
        """Wrap `data` as an event of this topic (type, version and source filled in)."""
        kind = next((k for k in self.kinds() if isinstance(data, k.payload)), None)
        if kind is None:
            raise TypeError(
                f"{self.name} carries {self.payload.__name__}, not {type(data).__name__}"
            )
        extra = {"id": id} if id is not None else {}
        return envelope_class(kind.payload)(
            source=self.source,
            type=kind.event_type,
            subject=subject,
            correlationid=correlationid,
            schemaversion=kind.schema_version,
            data=data,
            **extra,
        )

    def read(
        self,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes]],
        *,
        view: type[BaseModel] | None = None,
    ) -> Envelope[Any]:
        """Parse a record of this topic; `EnvelopeError` says what is wrong with it. A `view`
        (a model of some of the main payload's fields, ignoring the others) reads only those:
        a reader that needs two fields of a questionnaire need not hold the answers."""
        headers = list(headers)
        declared = {name: raw for name, raw in headers if name in ("ce_type", "ce_schemaversion")}
        kinds = {k.event_type.encode(): k for k in self.kinds()}
        kind = kinds.get(declared.get("ce_type", self.event_type.encode()))
        if kind is None:
            raise EnvelopeError(
                f"{self.name} carries {self.event_type}, not {declared['ce_type']!r}"
            )
        if declared.get("ce_schemaversion", b"") != str(kind.schema_version).encode():
            raise EnvelopeError(
                f"unsupported schema version {declared.get('ce_schemaversion')!r} for {kind.event_type}"
            )
        if view is not None and kind.event_type == self.event_type:
            return Envelope.from_kafka(value, headers, view)
        return Envelope.from_kafka(value, headers, kind.payload)


QUESTIONNAIRES = Topic(
    name="questionnaires.completed",
    key="submission reference",
    payload=QuestionnaireCompletedV1,
    event_type="fr.rebond.questionnaire.completed",
    schema_version=1,
    writer=Service.INTAKE,
    #: Intake reads its own events back (their reference and time only): "received" on the
    #: person's status page means Kafka has the answers.
    readers=(Service.ROUTER, Service.INTAKE),
    description="A person's answers, acknowledged to them with a reference.",
    retention_ms=PIPELINE_RETENTION_MS,
    personal_data=True,
)

DECISIONS = Topic(
    name="routing.decisions",
    key="submission reference",
    payload=RoutingDecisionV1,
    event_type="fr.rebond.routing.decided",
    schema_version=1,
    writer=Service.ROUTER,
    #: The notifier alone: the decision carries the contact details, the message and the
    #: distress answer. Intake and events, which face the internet, read the two topics below.
    readers=(Service.NOTIFIER,),
    description="Which association suits the person, why, and the referral to send.",
    retention_ms=PIPELINE_RETENTION_MS,
    personal_data=True,
)

OUTCOMES = Topic(
    name="routing.outcomes",
    key="submission reference",
    payload=RoutingOutcomeV1,
    event_type="fr.rebond.routing.outcome",
    schema_version=1,
    writer=Service.ROUTER,
    readers=(Service.INTAKE,),
    description="Where each decision oriented the person, for their status page (no contact "
    "details, message or distress answer).",
    #: No personal data beyond the reference: as `referrals.status`, which it goes with.
    retention_ms=30 * DAY_MS,
)

INVITEES = Topic(
    name="routing.invitees",
    key="submission reference",
    payload=InviteeV1,
    event_type="fr.rebond.routing.invitee",
    schema_version=1,
    writer=Service.ROUTER,
    readers=(Service.EVENTS,),
    description="People who consented to invitations to the Conférences du rebond, with only "
    "what an invitation needs.",
    retention_ms=PIPELINE_RETENTION_MS,
    personal_data=True,
)

REFERRAL_STATUS = Topic(
    name="referrals.status",
    key="submission reference",
    payload=ReferralStatusV1,
    event_type="fr.rebond.referral.status",
    schema_version=1,
    writer=Service.ROUTER,
    #: Coordination: an answer given by e-mail link, an expiry or a re-orientation shows in the
    #: associations' inbox and the human queue.
    readers=(Service.INTAKE, Service.NOTIFIER, Service.COORDINATION),
    description="Each step of a referral's life: offered, accepted, declined, expired, unrouted.",
    #: No personal data beyond the reference; 30 days let a reader restored from a backup
    #: replay a referral's whole life (answer deadlines are at most 10 days, then re-orientation).
    retention_ms=30 * DAY_MS,
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
    #: No personal data beyond the reference: as `referrals.status`.
    retention_ms=30 * DAY_MS,
)

CONFERENCES = Topic(
    name="conferences.events",
    key="conference event id",
    payload=ConferenceV1,
    event_type="fr.rebond.conference.changed",
    schema_version=1,
    writer=Service.EVENTS,
    #: Nobody reads it yet: registrants hear of a change on `conferences.registrations`, and a
    #: reader declared here is granted the ACL and must dead-letter a poison (tests/faults).
    readers=(),
    description="A Conférence du rebond scheduled, updated or cancelled (no personal data).",
    #: Public conference data: a season of conferences, for a reader that starts afresh.
    retention_ms=90 * DAY_MS,
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
    retention_ms=PIPELINE_RETENTION_MS,
    personal_data=True,
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
    retention_ms=PIPELINE_RETENTION_MS,
    personal_data=True,
)

COMMUNITY_MAIL = Topic(
    name="community.mail",
    key="story id, volunteer id or submission reference",
    payload=CommunityMailV1,
    event_type="fr.rebond.community.mail",
    schema_version=1,
    writer=Service.EVENTS,
    readers=(Service.NOTIFIER,),
    description="E-mails about success stories and peer exchange, written by the events "
    "service for the notifier to send as they are.",
    retention_ms=PIPELINE_RETENTION_MS,
    personal_data=True,
)

PEER_REQUESTS = Topic(
    name="peers.requests",
    key="submission reference",
    payload=PeerRequestV1,
    event_type="fr.rebond.peer.requested",
    schema_version=1,
    writer=Service.ROUTER,
    readers=(Service.EVENTS,),
    description="People who asked for peer support and consented to share a contact with a "
    "peer volunteer, with only what matching and an introduction need.",
    retention_ms=PIPELINE_RETENTION_MS,
    personal_data=True,
)

PEER_MATCHES = Topic(
    name="peers.matches",
    key="submission reference",
    payload=PeerMatchV1,
    event_type="fr.rebond.peer.match",
    schema_version=1,
    writer=Service.EVENTS,
    #: The person's status timeline (intake) and the anonymous statistics (coordination).
    readers=(Service.INTAKE, Service.COORDINATION),
    description="Each step of a peer match: proposed, declined, unmatched (no contact, no name).",
    #: No personal data beyond the reference: as `referrals.status`.
    retention_ms=30 * DAY_MS,
)

UNROUTED = Topic(
    name="referrals.unrouted",
    key="submission reference",
    payload=UnroutedReferralV1,
    event_type="fr.rebond.referral.unrouted",
    schema_version=1,
    writer=Service.ROUTER,
    #: The staff console's human queue, worked by the grouping's coordinators.
    readers=(Service.COORDINATION,),
    description="The human queue: people whom no association holds, with their contact only "
    "when they consented to sharing.",
    #: The console keeps the case in its store as soon as it reads it; the topic need not.
    retention_ms=PIPELINE_RETENTION_MS,
    personal_data=True,
)

FOLLOW_UPS = Topic(
    name="referrals.followups",
    key="submission reference",
    payload=FollowUpAnsweredV1,
    event_type="fr.rebond.referral.follow_up_answered",
    schema_version=1,
    writer=Service.NOTIFIER,
    #: The router puts a "not contacted" back in the human queue; the console counts them.
    readers=(Service.ROUTER, Service.COORDINATION),
    description="The person's answer to the 30-day follow-up: were they contacted?",
    retention_ms=30 * DAY_MS,
)

STATISTICS = Topic(
    name="statistics.facts",
    key="association id",
    payload=CaseFactV1,
    event_type="fr.rebond.statistics.case_fact",
    schema_version=1,
    writer=Service.ROUTER,
    readers=(Service.COORDINATION,),
    description="Anonymous steps of referrals of people who consented to statistics.",
    #: The console keeps what it counts in its own store; a month lets it catch up.
    retention_ms=30 * DAY_MS,
)

ASSIGNMENTS = Topic(
    name="coordination.assignments",
    key="submission reference",
    payload=CaseAssignedV1,
    event_type="fr.rebond.case.assigned",
    schema_version=1,
    writer=Service.COORDINATION,
    readers=(Service.ROUTER,),
    description="A coordinator hands a case of the human queue to an association, or closes it.",
    retention_ms=30 * DAY_MS,
    also=(EventKind("fr.rebond.case.closed", CaseClosedV1),),
)

OVERRIDES = Topic(
    name="directory.overrides",
    key="association id",
    payload=DirectoryOverrideV1,
    event_type="fr.rebond.directory.override",
    schema_version=1,
    writer=Service.COORDINATION,
    readers=(Service.ROUTER,),
    description="Live values laid over directory.yaml (pause, weekly capacity, answer deadline).",
    partitions=1,
    #: The router reads the whole topic at start to rebuild the values in force. Each record
    #: holds every live value of its association (the console lays a change over the previous
    #: one), so the latest per key is enough: compacted, a pause set years ago still holds.
    compacted=True,
)

APPLIED = Topic(
    name="directory.applied",
    key="association id",
    payload=DirectoryAppliedV1,
    event_type="fr.rebond.directory.applied",
    schema_version=1,
    writer=Service.ROUTER,
    readers=(Service.COORDINATION,),
    description="An override in force, with the values the router now routes by.",
    partitions=1,
    retention_ms=30 * DAY_MS,
)


ERASURES = Topic(
    name="privacy.erasures",
    key="submission reference",
    payload=ErasureRequestedV1,
    event_type="fr.rebond.privacy.erasure_requested",
    schema_version=1,
    writer=Service.INTAKE,
    #: Coordination deletes what the person shared from its inbox and queue.
    readers=(Service.ROUTER, Service.NOTIFIER, Service.EVENTS, Service.COORDINATION),
    description="A person withdrew consent and asked for erasure (the reference only).",
    #: The reference only: a service restored from a backup can replay the erasures it missed.
    retention_ms=90 * DAY_MS,
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
        #: The association's own client, and the console's inbox, where its members (only
        #: theirs: `rebond_coordination.policy`) read the same referral.
        readers=(Service.ASSOCIATION, Service.COORDINATION),
        description=f"Referrals for {association.value}, with only what the person agreed to share.",
        #: Until the longest answer deadline of the directory (10 days) has passed: an
        #: association reading its topic now and then still finds a referral it may answer;
        #: after the deadline the referral has moved on (and the e-mail had the same content).
        retention_ms=REFERRAL_RETENTION_MS,
        personal_data=True,
        also=(EventKind("fr.rebond.referral.withdrawn", ReferralWithdrawnV1),),
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
        #: The notifier's answer links and the console's inbox answer on the association's
        #: behalf, with one event id per referral and answer (`rebond_contracts.answers`).
        delegates=(Service.NOTIFIER, Service.COORDINATION),
        #: An answer and a decline reason, no personal data: as `referrals.status`.
        retention_ms=30 * DAY_MS,
        #: What happened after an acceptance (contacted, accompaniment started, ...).
        also=(EventKind("fr.rebond.referral.outcome", ReferralOutcomeV1),),
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
        #: Operators need time to look at what failed; a dead letter holds no personal data
        #: (`dead_letter_event` copies no value from a topic that has some).
        retention_ms=60 * DAY_MS,
    )


class KafkaRecord(Protocol):
    """What a consumed Kafka record offers (aiokafka's `ConsumerRecord` fits)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


_DEAD_LETTER_IDS = uuid5(NAMESPACE_URL, "https://rebond.example/dead-letters")


def dead_letter_event(
    service: Service, record: KafkaRecord, error: str, now: datetime | None = None
) -> Envelope[Any]:
    """The event `service` publishes on `deadletter.<service>` for a record it cannot process.

    The original key and headers travel inside the payload, with the error, and the value too
    when the source topic is registered without personal data: a record of a topic with
    personal data (or of an unknown one) is pointed to, not copied, so the dead letter topic's
    longer retention keeps no one's answers or contact details. The record itself carries the
    dead-letter topic's own CloudEvents headers, so it reads like any other event. Its id
    derives from where the record was, so dead-lettering it again is recognisable.
    """
    headers = {name: raw.decode("utf-8", "replace") for name, raw in record.headers}
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    letter = DeadLetterV1(
        service=service.value,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=key,
        value=(
            (record.value or b"").decode("utf-8", "replace")
            if _without_personal_data(record.topic)
            else None
        ),
        headers=headers,
        error=error,
        failed_at=now or datetime.now(UTC),
    )
    place = f"{record.topic}/{record.partition}/{record.offset}"
    subject = headers.get("ce_subject") or key or place
    return dead_letters(service).envelope(
        letter,
        subject=subject,
        correlationid=headers.get("ce_correlationid") or subject,
        id=str(uuid5(_DEAD_LETTER_IDS, f"{service.value}:{place}")),
    )


def _without_personal_data(name: str) -> bool:
    try:
        return not find(name).personal_data
    except KeyError:
        return False


def erasure_window_ms() -> int:
    """The longest a record with personal data can stay on Kafka after it was written: the
    longest retention of such a topic, plus the span of its last segment (`segment.ms`) and
    the broker's check interval. After an erasure, every copy on Kafka is gone within this."""
    return RETENTION_CHECK_MS + max(
        (t.retention_ms or 0) + (t.segment_ms or 0) for t in all_topics() if t.personal_data
    )


def erasure_window_days() -> int:
    """`erasure_window_ms` in whole days, rounded up: what the erasure reply promises."""
    return -(-erasure_window_ms() // DAY_MS)


def all_topics() -> list[Topic]:
    """Every topic Rebond uses, for creation, documentation and access rules."""
    return [
        QUESTIONNAIRES,
        DECISIONS,
        OUTCOMES,
        INVITEES,
        REFERRAL_STATUS,
        UNROUTED,
        FOLLOW_UPS,
        STATISTICS,
        ASSIGNMENTS,
        OVERRIDES,
        APPLIED,
        DELIVERIES,
        CONFERENCES,
        REGISTRATIONS,
        INVITATIONS,
        COMMUNITY_MAIL,
        PEER_REQUESTS,
        PEER_MATCHES,
        ERASURES,
        *(referrals(a) for a in AssociationId),
        *(responses(a) for a in AssociationId),
        *(
            dead_letters(s)
            for s in (
                Service.ROUTER,
                Service.NOTIFIER,
                Service.INTAKE,
                Service.EVENTS,
                Service.COORDINATION,
            )
        ),
    ]


def find(name: str) -> Topic:
    """The registered topic called `name`; KeyError when there is none."""
    for topic in all_topics():
        if topic.name == name:
            return topic
    raise KeyError(name)
