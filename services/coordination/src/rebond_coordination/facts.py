"""The facts the console learns from the other services, as the projections take them.

The Kafka adapter (`kafka.py`) builds these from the contracts' events; tests also build them
directly. Each carries an id or a natural key, so applying the same fact twice (at-least-once delivery) changes nothing the second time.
"""

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import DeclineReason, Reason, Reference
from rebond_contracts.questionnaire import Need, PreferredChannel, Region, Stage
from rebond_coordination.domain import Cause


class _Fact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CallbackContact(_Fact):
    """What the person agreed to share with the grouping's team, to be called back."""

    first_name: str
    email: str | None = None
    phone: str | None = None
    preferred_channel: PreferredChannel | None = None


class TriedAssociation(_Fact):
    association_id: AssociationId
    outcome: str = Field(examples=["declined", "expired"])
    reason: DeclineReason | None = None
    comment: str | None = None


class _Situation(_Fact):
    """A person's request as the router passes it on: to the grouping's queue or to an
    association."""

    reference: Reference
    urgent: bool = False
    stage: Stage
    region: Region
    department: str | None = None
    needs: list[Need]


class CaseQueued(_Situation):
    """A case entering the human queue (unrouted, all declined, expired, not contacted)."""

    cause: Cause
    tried: list[TriedAssociation] = []
    #: Only when the person consented to be called back by the grouping; else None.
    contact: CallbackContact | None = None
    at: AwareDatetime


class ReferralOffered(_Situation):
    """A referral handed to an association: what the person shared, and why it was chosen."""

    referral_id: str
    association_id: AssociationId
    contact: CallbackContact
    message: str | None = None
    #: Set only when the person consented to pass the distress answer on.
    distress: str | None = None
    reasons: list[Reason] = []
    offered_at: AwareDatetime
    respond_by: AwareDatetime | None = None
    #: The name of the association's antenna the referral is for (the router's directory).
    antenna: str | None = None


class StatusChanged(_Fact):
    """A step in a referral's life as the router records it (answers given by e-mail link
    arrive here too)."""

    reference: Reference
    referral_id: str | None = None
    association_id: AssociationId | None = None
    status: Literal[
        "offered", "reminded", "accepted", "declined", "expired", "reoriented", "unrouted",
        "closed", "follow_up_due",
    ]  # fmt: skip
    reason: DeclineReason | None = None
    #: With "accepted": when the association will call the person, and who (a first name).
    call_by: AwareDatetime | None = None
    caller: str | None = None
    at: AwareDatetime


class Withdrawn(_Fact):
    """The person erased their data: every copy of what they shared is deleted here, and the
    reference is remembered so what is read of it later is dropped."""

    reference: Reference
    at: AwareDatetime


class EffectiveValues(_Fact):
    paused: bool
    weekly_capacity: int = Field(ge=0)
    response_deadline_days: float = Field(gt=0)


class DirectoryObserved(_Fact):
    """An association's values as the router applies them (from its directory and overrides)."""

    association_id: AssociationId
    values: EffectiveValues
    rule_set_version: str
    at: AwareDatetime


class OverrideApplied(_Fact):
    """The router applied an override the console sent."""

    override_id: str
    association_id: AssociationId
    values: EffectiveValues
    #: The rule set the router applied it on (None: keep the one known).
    rule_set_version: str | None = None
    at: AwareDatetime


class FollowUpAnswered(_Fact):
    """The person's answer, 30 days after an acceptance, to "were you contacted?"."""

    reference: Reference
    referral_id: str
    association_id: AssociationId
    contacted: bool
    at: AwareDatetime
    #: The person consented to anonymous statistics: only then is the answer counted.
    statistics_consent: bool = False


StatisticsKind = Literal[
    "offered", "accepted", "declined", "expired", "followup_contacted",
    "followup_not_contacted", "registration", "outcome_contacted",
    "outcome_accompaniment_started", "outcome_redirected", "outcome_unreachable",
    "outcome_closed", "peer_match",
]  # fmt: skip


class StatisticsFact(_Fact):
    """One anonymous fact for the statistics: no reference, no contact, only dimensions."""

    fact_id: str
    kind: StatisticsKind
    at: AwareDatetime
    #: Facts of people who did not consent to statistics are dropped on arrival.
    consented: bool
    region: Region | None = None
    stage: Stage | None = None
    association_id: AssociationId | None = None
    reason: DeclineReason | None = None
    #: For answers: the time from the offer to this first answer.
    seconds_to_answer: float | None = Field(default=None, ge=0)
