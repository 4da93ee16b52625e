"""The anonymous facts the grouping's statistics count (`statistics.facts`, issue 21).

A fact is read off a transition of the referral aggregate: each offer, acceptance, decline and
expiry it says on `referrals.status`, and each outcome the association that accepted reports
(`ReferralOutcomeV1`: the referral's `outcome` changes). (The person's answer to the follow-up is counted by the
console from `referrals.followups`, which carries the consent.) Only for a person who
consented to statistics (`Case.statistics`) and only on the main track: a fact of the distress
track would tell who said they are in distress.

A fact carries no reference, contact or time of day (`CaseFactV1`); its id derives from the
event it is read off, so a transition replayed from the outbox publishes the same fact and the
console counts it once.
"""

from datetime import UTC, datetime
from uuid import UUID, uuid5

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    CaseFactKind,
    CaseFactV1,
    DeclineReason,
    ReferralStatus,
    ReferralStatusV1,
)
from rebond_contracts.questionnaire import Region, Stage
from rebond_contracts.topics import STATISTICS
from rebond_router.referral import Event, Referral, Transition
from rebond_router.rules import Track

#: The steps on `referrals.status` that are counted, and as what.
_COUNTED = {
    ReferralStatus.OFFERED: CaseFactKind.OFFERED,
    ReferralStatus.ACCEPTED: CaseFactKind.ACCEPTED,
    ReferralStatus.DECLINED: CaseFactKind.DECLINED,
    ReferralStatus.EXPIRED: CaseFactKind.EXPIRED,
}
_ANSWERS = {CaseFactKind.ACCEPTED, CaseFactKind.DECLINED}


def facts(before: Referral | None, done: Transition) -> list[tuple[Event, str]]:
    """The facts of `done` (from `before`, None for a first decision), in its events' order,
    each with its Kafka key: its association, so that one association's facts stay in order."""
    after = done.referral
    case = after.case
    if case is None or not case.statistics or after.track is not Track.MAIN:
        return []
    offered_at = before.template.referred_at if before and before.template else None
    found = []
    for event in done.events:
        status = event.payload
        if not isinstance(status, ReferralStatusV1) or status.association_id is None:
            continue
        kind = _COUNTED.get(status.status)
        if kind is None:
            continue
        seconds = None
        if kind in _ANSWERS and offered_at is not None:
            seconds = max(0.0, (status.at - offered_at).total_seconds())
        fact = case_fact(
            event.id,
            kind,
            case.region,
            case.stage,
            status.association_id,
            status.at,
            status.reason,
            seconds,
        )
        found.append((fact, status.association_id.value))
    if before is not None and after.outcome is not None and after.outcome != before.outcome:
        assert after.referral_id is not None and after.holder is not None  # it was accepted
        kind = CaseFactKind(f"outcome_{after.outcome.value}")
        fact = case_fact(
            after.referral_id, kind, case.region, case.stage, after.holder, after.updated_at
        )
        found.append((fact, after.holder.value))
    return found


def case_fact(
    source: UUID,
    kind: CaseFactKind,
    region: Region,
    stage: Stage,
    association: AssociationId,
    at: datetime,
    reason: DeclineReason | None = None,
    seconds: float | None = None,
) -> Event:
    """The fact `kind` of an event (`source`, its id), of the day of `at`, with its id derived
    from `source` and `kind`."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    payload = CaseFactV1(
        fact_id=uuid5(source, f"statistics:{kind.value}"), kind=kind, region=region,
        stage=stage, association_id=association, reason=reason, seconds_to_answer=seconds,
        day=day,
    )  # fmt: skip
    return Event(STATISTICS, payload, payload.fact_id)
