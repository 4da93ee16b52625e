"""Payload models carried by Rebond's events (the `data` of each envelope).

Inbound and outbound shapes are kept apart: what a person sends (`QuestionnaireV1`) is not what
an association receives (`ReferralV1`), which holds only what the person agreed to share.
"""

import base64
import secrets
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, field_validator

from rebond_contracts.associations import AssociationId
from rebond_contracts.questionnaire import (
    MESSAGE_MAX_LENGTH,
    Contact,
    Distress,
    Need,
    QuestionnaireV1,
    Region,
    Stage,
)

#: What people see and what associations quote: "RB-" then 16 characters of Crockford base32.
REFERENCE_PATTERN = (
    r"^RB-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$"
)
Reference = Annotated[str, Field(pattern=REFERENCE_PATTERN, examples=["RB-7K3M-Q9XA-2DFE-W8NB"])]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: RFC 4648 base32 digit → Crockford digit (the same 5 bits, another alphabet: no I L O U, so a
#: reference read aloud or copied by hand is not misread).
_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD)


def new_reference() -> str:
    """A new `RB-XXXX-XXXX-XXXX-XXXX` (`REFERENCE_PATTERN`): 80 random bits, so that nobody
    guesses another person's, read in one call (not 16 draws of `secrets.choice`, which showed
    in intake's profile) and spelled as 16 Crockford base32 digits."""
    chars = base64.b32encode(secrets.token_bytes(10)).decode("ascii").translate(_TO_CROCKFORD)
    return f"RB-{chars[0:4]}-{chars[4:8]}-{chars[8:12]}-{chars[12:16]}"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: A reference's referrals run on tracks: `main`, the association best suited to the situation,
#: and, with the distress answer and the art. 9 consent, `distress` (APESA) beside it, each with
#: its own referral and lifecycle.
Track = Literal["main", "distress"]
#: How a decision was made: the directory's scoring, or a coordinator's assignment of a case
#: from the human queue (`CaseAssignedV1`).
DecisionRule = Literal["scoring", "manual"]
#: A first name, as an association gives who will call; no line breaks or control characters.
CallerName = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[^\x00-\x1f\x7f]+$")]
#: A short note written by staff (an assignment, a recorded outcome); no control characters but
#: line breaks.
StaffNote = Annotated[str, Field(max_length=500, pattern=r"^[^\x00-\x09\x0b-\x1f\x7f]*$")]


class QuestionnaireCompletedV1(_Payload):
    """Intake -> router: a person's answers, acknowledged to them under `reference`."""

    reference: Reference
    received_at: AwareDatetime
    questionnaire: QuestionnaireV1
    #: Whether the free text speaks of suicide or self-harm (intake's reviewed lexicon). Set
    #: only with the person's explicit art. 9 consent (`consents.sensitive_data`); None
    #: otherwise, so that nothing about distress leaves intake without it.
    crisis_words: bool | None = None


class Reason(_Payload):
    """Why an association was chosen, in words a person understands."""

    code: str = Field(examples=["stage_after_liquidation"])
    fr: str
    en: str


class ScoreBreakdown(_Payload):
    """How one candidate association scored; kept so an auditor can see why."""

    association_id: AssociationId
    needs: float = 0.0
    region: float = 0.0
    size: float = 0.0
    capacity: float = 0.0
    #: Points for a distress association when the person says they are in distress.
    distress: float = 0.0
    total: float = 0.0
    #: The values the router decided by, the coordinators' live override laid over
    #: `directory.yaml` (issue 21): the association's weekly capacity, the referrals it was
    #: offered this week before this decision, its answer deadline, and the override they come
    #: from (None: the file's values). None in decisions made before they were recorded.
    weekly_capacity: int | None = Field(default=None, ge=0)
    offered_this_week: int | None = Field(default=None, ge=0)
    response_deadline_days: float | None = Field(default=None, gt=0)
    override_id: UUID | None = None


class AntennaV1(_Payload):
    """An association's antenna, as the router's directory describes it: the referral of a
    person of one of its departments is e-mailed (and webhooked, when it has a webhook) to it
    rather than to the association's own address, and so are the referral's reminder, expiry
    and withdrawal. The association's own contact, not the person's."""

    name: str = Field(min_length=1, max_length=120, pattern=r"^[^\x00-\x1f\x7f]+$")
    email: EmailStr
    webhook_url: Annotated[str, Field(max_length=2000, pattern=r"^https?://\S+$")] | None = None


class ReferralV1(_Payload):
    """What an association receives on `referrals.<association_id>`.

    Only what the person agreed to share: no referral exists without
    `consents.share_with_association`, and `distress` is set only with `consents.sensitive_data`.
    """

    referral_id: UUID
    reference: Reference
    association_id: AssociationId
    urgent: bool = False
    stage: Stage
    region: Region
    department: str | None = None
    needs: list[Need]
    contact: Contact
    message: Annotated[str, Field(max_length=MESSAGE_MAX_LENGTH)] | None = None
    distress: Distress | None = None
    reasons: list[Reason] = []
    referred_at: AwareDatetime
    respond_by: AwareDatetime | None = None
    #: The language the person answered in (`fr`, `en`): the notifier writes to them in it.
    locale: str = "fr"
    #: The association's antenna for `department`, when its directory entry has one: the
    #: referral is for that antenna (and the notifier writes to it); None: the association.
    antenna: AntennaV1 | None = None
    #: A coordinator's note when they assigned the case by hand (`RoutingDecisionV1.rule`
    #: "manual"), for the association that holds it; None otherwise.
    note: StaffNote | None = None


class InvitationContactV1(_Payload):
    """Who may be invited to a Conférence du rebond: set only with `consents.event_invitations`
    and an e-mail address."""

    first_name: str
    email: str
    region: Region
    department: str | None = None
    locale: str = "fr"


class RoutingDecisionV1(_Payload):
    """Router -> notifier and intake: which association suits the person, and why.

    `referral` is what the notifier sends to the primary association; it is absent when the
    person did not consent to sharing (they still see the recommendation).
    """

    decision_id: UUID
    reference: Reference
    rule_set_version: str
    primary: AssociationId | None
    alternates: list[AssociationId] = []
    scores: list[ScoreBreakdown] = []
    reasons: list[Reason] = []
    urgent: bool = False
    referral: ReferralV1 | None = None
    #: 1 for the first decision; a re-orientation (decline, no answer) is a new decision, n + 1.
    attempt: int = Field(default=1, ge=1)
    invitation: InvitationContactV1 | None = None
    decided_at: AwareDatetime
    track: Track = "main"
    rule: DecisionRule = "scoring"
    #: The coordinator's note of a manual decision, for the association.
    note: StaffNote | None = None
    #: The person consented to anonymous statistics (`consents.statistics`); said on a first
    #: decision (the notifier keeps it with their address, for their follow-up answer).
    statistics_consent: bool = False


#: Reason codes that reveal the distress answer (health data, GDPR art. 9): they reach the
#: person's own e-mail and the association (with consent), never the status topic.
DISTRESS_REASON_CODES = frozenset({"distress", "distress_resources"})


class RoutingOutcomeV1(_Payload):
    """Router -> intake, on `routing.outcomes`: where a decision oriented the person, for their
    status page. What `RoutingDecisionV1` says minus everything intake, an internet-facing
    service, must not hold: no contact details, message, scores, referral, distress answer or
    urgency, and no reason that reveals distress (`DISTRESS_REASON_CODES`, refused here).
    Only the `main` track's decisions come here: APESA's (the `distress` track) would tell
    whoever holds the reference that the person said they were in distress.
    """

    decision_id: UUID
    reference: Reference
    primary: AssociationId | None
    #: 1 for the first decision; n + 1 for each re-orientation.
    attempt: int = Field(default=1, ge=1)
    reasons: list[Reason] = []
    decided_at: AwareDatetime
    #: Another suitable association the person may turn to (at most one is shown); never APESA.
    alternates: list[AssociationId] = []
    #: When `primary` must have answered, after which the referral moves on by itself.
    respond_by: AwareDatetime | None = None

    @field_validator("reasons")
    @classmethod
    def _no_distress_reason(cls, reasons: list[Reason]) -> list[Reason]:
        if revealing := [r.code for r in reasons if r.code in DISTRESS_REASON_CODES]:
            raise ValueError(f"reasons that reveal distress stay off this topic: {revealing}")
        return reasons


class InviteeV1(_Payload):
    """Router -> events, on `routing.invitees`: a person who consented to invitations to the
    Conférences du rebond and gave an e-mail address, with only what an invitation needs (from
    their first decision). Nobody else's decision reaches events."""

    reference: Reference
    contact: InvitationContactV1
    decided_at: AwareDatetime


class DeadLetterV1(_Payload):
    """A message a service could not process, kept with the error and its original headers.

    The original value is kept only for topics without personal data; for the others it is
    left out (None), so a dead letter never outlives the personal data of its source topic:
    that record stays readable at `topic`/`partition`/`offset` for the source's own retention.
    """

    service: str
    topic: str
    partition: int
    offset: int
    key: str | None
    value: str | None = Field(
        description="The original value, decoded as UTF-8 with replacement; None when the "
        "source topic carries personal data (read it at topic/partition/offset)."
    )
    headers: dict[str, str]
    error: str
    failed_at: datetime


class Answer(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"


class DeclineReason(StrEnum):
    UNREACHABLE = "unreachable"
    NOT_ELIGIBLE = "not_eligible"
    NO_CAPACITY = "no_capacity"
    DUPLICATE = "duplicate"
    OTHER = "other"


class ReferralResponseV1(_Payload):
    """An association's answer, on its own `responses.<association_id>` topic."""

    referral_id: UUID
    reference: Reference
    answer: Answer
    reason: DeclineReason | None = None
    answered_at: AwareDatetime
    #: With an acceptance: when the association will call the person, and who (a first name).
    #: The association's own data, not the person's; told to the person by e-mail.
    call_by: AwareDatetime | None = None
    caller: CallerName | None = None


class ReferralStatus(StrEnum):
    OFFERED = "offered"
    REMINDED = "reminded"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    REORIENTED = "reoriented"
    UNROUTED = "unrouted"
    CLOSED = "closed"
    #: 30 days after an acceptance without a reported contact: the person is asked whether they
    #: were contacted (`FollowUpAnsweredV1`).
    FOLLOW_UP_DUE = "follow_up_due"


class ReferralStatusV1(_Payload):
    """Router -> intake and notifier: a step in a referral's life. No personal data."""

    reference: Reference
    referral_id: UUID | None = None
    association_id: AssociationId | None = None
    status: ReferralStatus
    reason: DeclineReason | None = None
    next_association_id: AssociationId | None = None
    respond_by: AwareDatetime | None = None
    at: AwareDatetime
    track: Track = "main"
    #: With `accepted`: the association's `ReferralResponseV1.call_by` and `caller`.
    call_by: AwareDatetime | None = None
    caller: CallerName | None = None


class TriedAssociation(_Payload):
    """One association a referral was offered to, and how that offer ended."""

    association_id: AssociationId
    referral_id: UUID
    outcome: ReferralStatus = Field(examples=["declined", "expired"])
    reason: DeclineReason | None = None


class UnroutedReferralV1(_Payload):
    """Router -> the grouping's human queue: a person who consented to be contacted and whom no
    association holds (every candidate declined or stayed silent, or none was eligible).

    Only what a human needs to pick the case up, prioritise it and call back: the contact only
    when the person consented to sharing (the portal's consent names the grouping's team among
    the recipients), else None ("aucun contact partagé").
    """

    reference: Reference
    urgent: bool = False
    stage: Stage
    region: Region
    needs: list[Need]
    cause: str = Field(
        examples=["all_declined_or_expired", "no_candidate", "follow_up_not_contacted"]
    )
    tried: list[TriedAssociation] = []
    rule_set_version: str
    at: AwareDatetime
    contact: Contact | None = None
    department: str | None = None


class FollowUpAnsweredV1(_Payload):
    """Notifier -> router and coordination, on `referrals.followups`: the person's answer to
    "Avez-vous été contacté·e ?", given by a signed link 30 days after an acceptance. A "no"
    puts the case back in the human queue. No personal data."""

    reference: Reference
    referral_id: UUID
    association_id: AssociationId
    contacted: bool
    answered_at: AwareDatetime
    #: The person consented to anonymous statistics: only then is the answer counted (the
    #: console's follow-up rate).
    statistics_consent: bool = False


class OutcomeKind(StrEnum):
    CONTACTED = "contacted"
    ACCOMPANIMENT_STARTED = "accompaniment_started"
    REDIRECTED = "redirected"
    UNREACHABLE = "unreachable"
    CLOSED = "closed"


class ReferralOutcomeV1(_Payload):
    """An association -> router, on `responses.<association_id>` (`fr.rebond.referral.outcome`):
    what happened after it accepted. "contacted" spares the person the 30-day follow-up."""

    referral_id: UUID
    reference: Reference
    outcome: OutcomeKind
    on: date
    comment: StaffNote | None = None
    recorded_at: AwareDatetime


class CaseAssignedV1(_Payload):
    """Coordination -> router, on `coordination.assignments`: a coordinator hands a case of the
    human queue to an association; the router decides it with `rule="manual"` and the note, and
    the referral follows the usual lifecycle. `assigned_by` is a staff id, never a name."""

    assignment_id: UUID
    reference: Reference
    association_id: AssociationId
    note: StaffNote
    assigned_by: str = Field(max_length=64)
    assigned_at: AwareDatetime


class CaseClosedV1(_Payload):
    """Coordination -> router, on `coordination.assignments` (`fr.rebond.case.closed`): a
    coordinator closes a case of the human queue without an association (`outcome` says why)."""

    closure_id: UUID
    reference: Reference
    outcome: str = Field(max_length=64, examples=["reached_by_phone", "no_longer_needed"])
    closed_by: str = Field(max_length=64)
    closed_at: AwareDatetime


class DirectoryOverrideV1(_Payload):
    """Coordination -> router, on `directory.overrides` (keyed by association): live values laid
    over `directory.yaml` for one association. None leaves the file's value."""

    override_id: UUID
    association_id: AssociationId
    paused: bool | None = None
    weekly_capacity: int | None = Field(default=None, ge=0)
    response_deadline_days: float | None = Field(default=None, gt=0)
    set_by: str = Field(max_length=64)
    set_at: AwareDatetime


class DirectoryAppliedV1(_Payload):
    """Router -> coordination, on `directory.applied`: an override now in force, with the values
    the router routes by (the console shows "en attente" until it reads this)."""

    override_id: UUID
    association_id: AssociationId
    paused: bool
    weekly_capacity: int
    response_deadline_days: float
    rule_set_version: str
    applied_at: AwareDatetime


class CaseFactKind(StrEnum):
    """A step of a referral the grouping's statistics count (issue 21)."""

    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    #: The person's answer to the 30-day follow-up: contacted, or not.
    FOLLOWUP_CONTACTED = "followup_contacted"
    FOLLOWUP_NOT_CONTACTED = "followup_not_contacted"
    #: What the association that accepted reported happened next (`ReferralOutcomeV1`).
    OUTCOME_CONTACTED = "outcome_contacted"
    OUTCOME_ACCOMPANIMENT_STARTED = "outcome_accompaniment_started"
    OUTCOME_REDIRECTED = "outcome_redirected"
    OUTCOME_UNREACHABLE = "outcome_unreachable"
    OUTCOME_CLOSED = "outcome_closed"


class CaseFactV1(_Payload):
    """Router -> coordination, on `statistics.facts`: one step of a referral, for the
    anonymous statistics, only of a person who consented to them (`consents.statistics`), and
    only on the main track (counting the distress track would count who said they are in
    distress). No reference, no contact, no free text: the dimensions the statistics cross
    (region, stage, association, decline reason), the day (a fact is counted by week and
    month) and, for an answer, how long the association took."""

    fact_id: UUID
    kind: CaseFactKind
    region: Region
    stage: Stage
    association_id: AssociationId
    reason: DeclineReason | None = None
    #: For an answer (accepted, declined): seconds from the offer to it.
    seconds_to_answer: float | None = Field(default=None, ge=0)
    #: The day of the step (midnight UTC): a fact carries no time of day.
    day: AwareDatetime


class DeliveryChannel(StrEnum):
    ASSOCIATION_EMAIL = "association_email"
    PERSON_EMAIL = "person_email"
    WEBHOOK = "webhook"


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"


class DeliveryV1(_Payload):
    """Notifier -> intake: what became of one side effect. No personal data."""

    reference: Reference
    referral_id: UUID | None = None
    association_id: AssociationId | None = None
    channel: DeliveryChannel
    outcome: DeliveryOutcome
    attempts: int = 1
    at: AwareDatetime


# --- Conférences du rebond (writer: events) -------------------------------------------------


class ConferenceKind(StrEnum):
    CONFERENCE = "conference"
    PEER_EXCHANGE = "peer_exchange"
    SUCCESS_STORIES = "success_stories"


class ConferenceChange(StrEnum):
    SCHEDULED = "scheduled"
    UPDATED = "updated"
    CANCELLED = "cancelled"


class ConferenceV1(_Payload):
    """Events -> notifier: a Conférence du rebond scheduled, updated or cancelled.

    Keyed by `event_id`, so every change of one conference stays in order. No personal data.
    Times carry their Europe/Paris offset.
    """

    event_id: UUID
    change: ConferenceChange
    #: 1 when scheduled, + 1 with each later change.
    version: int = Field(ge=1)
    organiser: str = Field(examples=["second-souffle"])
    title: str
    description: str
    kind: ConferenceKind
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    timezone: str = "Europe/Paris"
    venue_address: str
    city: str
    department: str
    region: Region
    online_url: str | None = None
    capacity: int = Field(ge=1)
    page_url: str | None = None
    ics_url: str | None = None
    at: AwareDatetime


class ConferenceSummaryV1(_Payload):
    """What a registration or an invitation says about its conference (enough for an e-mail)."""

    event_id: UUID
    title: str
    kind: ConferenceKind
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    venue_address: str
    city: str
    department: str
    region: Region
    online_url: str | None = None
    cancelled: bool = False
    page_url: str | None = None
    ics_url: str | None = None


class RegistrationChange(StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    #: A seat freed up: the first waitlisted person is now confirmed.
    PROMOTED = "promoted"
    CANCELLED = "cancelled"
    #: The conference changed (time, place...) and this registration still holds.
    EVENT_UPDATED = "event_updated"
    #: The conference is in two days: a reminder, once, to each confirmed registrant.
    REMINDER = "reminder"


class RegistrationV1(_Payload):
    """Events -> notifier: a step in one registration's life, so the person can be e-mailed.

    Personal data, on purpose and no more: the person's `name` and `email` (to write to them) and
    the signed `cancel_url` (their own cancellation link). Keyed by the conference's `event_id`.
    """

    registration_id: UUID
    event_id: UUID
    change: RegistrationChange
    #: Who cancelled: the person (signed link) or the organiser (conference cancelled).
    cancelled_by: Literal["person", "organiser"] | None = None
    name: str
    email: str
    locale: str = "fr"
    cancel_url: str | None = None
    waitlist_position: int | None = Field(default=None, ge=1)
    conference: ConferenceSummaryV1
    at: AwareDatetime


class InvitationV1(_Payload):
    """Events -> notifier: invite a person who consented to invitations to one conference.

    At most one per (person, conference). Carries the first name and e-mail from the routing
    decision's `invitation`, only so that the notifier can write to them. Keyed by `reference`.
    """

    invitation_id: UUID
    reference: Reference
    first_name: str
    email: str
    locale: str = "fr"
    #: Whether the conference is in the person's department or only in their region.
    match: Literal["department", "region"]
    conference: ConferenceSummaryV1
    invited_at: AwareDatetime


# --- Withdrawal and erasure (writer: intake; the notice: notifier) ----------------------------


class ErasureRequestedV1(_Payload):
    """Intake -> router, notifier, events: the person withdrew consent and asked for erasure.

    No personal data: the reference is enough for every service to find what it holds.
    """

    reference: Reference
    requested_at: AwareDatetime


class ReferralWithdrawnV1(_Payload):
    """Notifier -> one association, on `referrals.<association_id>` (its own `ce_type`): the
    person withdrew; delete what you hold about this referral. No personal data."""

    reference: Reference
    referral_id: UUID | None = None
    association_id: AssociationId
    reason: Literal["erasure_requested"] = "erasure_requested"
    withdrawn_at: AwareDatetime


# --- Peer exchange and success stories (issue 24) --------------------------------------------


class CommunityMailKind(StrEnum):
    """Why the events service writes to someone about peer exchange or a success story."""

    #: A story was received: its withdrawal link.
    STORY_RECEIVED = "story_received"
    #: A story was published or declined by a moderator.
    STORY_MODERATED = "story_moderated"
    #: A volunteer signed up: the link confirming their address.
    VOLUNTEER_CONFIRM = "volunteer_confirm"
    #: A volunteer was approved or declined: their pause and erasure links.
    VOLUNTEER_MODERATED = "volunteer_moderated"
    #: A match: each side is introduced to the other.
    PEER_INTRODUCTION = "peer_introduction"
    #: No (further) volunteer could be proposed to a person.
    PEER_NONE = "peer_none"


class CommunityMailV1(_Payload):
    """Events -> notifier: one e-mail, written by the events service (French first, English
    second), for the notifier to send as it is.

    Personal data, on purpose and no more: the recipient's address, and in the text only what
    the people concerned agreed to share (an introduction names the peer and the contact they
    gave for it). Keyed by what it is about (a story, a volunteer, a peer request's reference),
    so an erasure drops its unsent mails by that key.
    """

    mail_id: UUID
    kind: CommunityMailKind
    to: str
    locale: str = "fr"
    subject: str
    text: str
    at: AwareDatetime
    #: The submission reference of the person a peer mail is about (an introduction, to either
    #: side, or "no peer left"), so that the person's erasure cancels it while it is unsent;
    #: None for a mail about a story or a volunteer alone.
    reference: Reference | None = None


class PeerContactV1(_Payload):
    """What a person asking for a peer agreed to share with that peer."""

    first_name: str
    email: str | None = None
    phone: str | None = None


class PeerRequestV1(_Payload):
    """Router -> events: a person asked for `peer_support` and consented to share their contact
    with a peer volunteer. Only what matching and an introduction need: no answers, no
    message, nothing about distress."""

    reference: Reference
    region: Region
    stage: Stage
    #: NAF section letter (`questionnaire.Sector`), when the person gave it.
    sector: str | None = None
    contact: PeerContactV1
    locale: str = "fr"
    requested_at: AwareDatetime
    #: The person consented to anonymous statistics (`consents.statistics`): events says it
    #: again on each step of their match (`PeerMatchV1.statistics_consent`).
    statistics_consent: bool = False


class PeerMatchStatus(StrEnum):
    #: A volunteer was proposed; both sides were introduced.
    PROPOSED = "proposed"
    #: One side declined; the next volunteer, if any, follows as its own `proposed`.
    DECLINED = "declined"
    #: No volunteer (left) for this person: region, stage, monthly limits.
    UNMATCHED = "unmatched"


class PeerMatchV1(_Payload):
    """Events -> intake (the person's status timeline) and coordination (statistics): one step
    of a peer match. No contact, no name: the reference, the match and its status."""

    match_id: UUID | None = None
    reference: Reference
    status: PeerMatchStatus
    region: Region
    #: How many volunteers were proposed to this person so far.
    attempt: int = Field(default=1, ge=0)
    at: AwareDatetime
    #: The person consented to anonymous statistics: only then does the console count the
    #: match (a `proposed` step, by region).
    statistics_consent: bool = False
