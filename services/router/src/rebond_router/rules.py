"""Orientation rules: pure functions from answers (and re-orientations) to routing decisions.

`decide` turns a questionnaire into the first decision; `reorient` turns a declined or
expired referral into the next decision for the same person. Ids are derived, never random:
the decision id is uuid5 of the questionnaire event id (a redelivery is recognisable), a
re-orientation's id is uuid5 of the first decision id and its attempt number, and a referral id
is uuid5 of its decision id and the association.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    DISTRESS_REASON_CODES,
    DecisionRule,
    InvitationContactV1,
    InviteeV1,
    QuestionnaireCompletedV1,
    Reason,
    ReferralV1,
    RoutingDecisionV1,
    RoutingOutcomeV1,
    ScoreBreakdown,
)
from rebond_contracts.questionnaire import Distress
from rebond_router.directory import Directory
from rebond_router.scoring import Candidate, rank

_NAMESPACE = uuid5(NAMESPACE_URL, "https://rebond.example/decisions")

RESOURCES_REASON = Reason(
    code="distress_resources",
    fr="en cas de détresse, appelez le 3114 (gratuit, 24h/24) ; danger immédiat : 15 ou 112",
    en="if you are in distress, call 3114 (free, 24/7); immediate danger: 15 or 112",
)


def decision_id_for(event_id: str) -> UUID:
    """The same questionnaire event always yields the same decision id (idempotent redelivery)."""
    return uuid5(_NAMESPACE, event_id)


def reorientation_id(first_decision_id: UUID, attempt: int) -> UUID:
    """The decision id of re-orientation number `attempt` (2, 3, ...) of one person."""
    return uuid5(first_decision_id, f"attempt-{attempt}")


def referral_id_for(decision_id: UUID, association: AssociationId) -> UUID:
    return uuid5(decision_id, association.value)


@dataclass(frozen=True)
class Routing:
    """A first decision plus what the store needs to follow the referral."""

    decision: RoutingDecisionV1
    #: Who may receive the referral, holder first; empty without consent to share.
    referral_candidates: tuple[Candidate, ...]
    #: True when the person consented to be contacted but no association can take them.
    unrouted: bool
    #: Why an unrouted case is in the human queue: `no_capacity` when every suitable
    #: association is full, else `no_candidate`.
    cause: str = "no_candidate"
    #: The copy of an unrouted case a coordinator may assign (see `_referral_copy`).
    queued: ReferralV1 | None = None


def decide(
    event_id: str,
    submitted: QuestionnaireCompletedV1,
    now: datetime,
    directory: Directory,
    offered_this_week: Mapping[AssociationId, int],
) -> Routing:
    answers = submitted.questionnaire
    ranking = rank(answers, directory, offered_this_week)
    decision_id = decision_id_for(event_id)
    in_distress = answers.distress is Distress.YES
    shares = answers.consents.share_with_association and answers.contact is not None
    referral_candidates: tuple[Candidate, ...] = ()
    if shares:
        # A distress association hears of the person only with explicit (art. 9) consent.
        referral_candidates = tuple(
            c for c in ranking.candidates if not c.distress_only or answers.consents.sensitive_data
        )
    shown = referral_candidates if referral_candidates else ranking.candidates
    primary = shown[0] if shown else None
    reasons = list(primary.reasons) if primary else []
    if in_distress:
        reasons.append(RESOURCES_REASON)
    referral = None
    if referral_candidates and answers.contact is not None:
        holder = referral_candidates[0]
        respond_by = now + directory.get(holder.association).response_deadline
        referral = _referral_copy(
            submitted, decision_id, holder.association, holder.reasons, now, respond_by
        )
    invitation = None
    contact = answers.contact
    if answers.consents.event_invitations and contact is not None and contact.email:
        invitation = InvitationContactV1(
            first_name=contact.first_name,
            email=contact.email,
            region=answers.situation.region,
            department=answers.situation.department,
            locale=answers.locale.value,
        )
    decision = RoutingDecisionV1(
        decision_id=decision_id,
        reference=submitted.reference,
        rule_set_version=directory.version,
        primary=primary.association if primary else None,
        alternates=[c.association for c in shown[1:]],
        scores=[c.score for c in ranking.candidates],
        reasons=reasons,
        urgent=in_distress,
        referral=referral,
        attempt=1,
        invitation=invitation,
        decided_at=now,
    )
    unrouted = shares and not referral_candidates
    queued = None
    if unrouted:
        queued = _referral_copy(submitted, decision_id, directory.associations[0].id, (), now)
    return Routing(
        decision=decision,
        referral_candidates=referral_candidates,
        unrouted=unrouted,
        cause="no_capacity" if ranking.full else "no_candidate",
        queued=queued,
    )


def _referral_copy(
    submitted: QuestionnaireCompletedV1,
    decision_id: UUID,
    association: AssociationId,
    reasons: Sequence[Reason],
    now: datetime,
    respond_by: datetime | None = None,
) -> ReferralV1:
    """What an association receives of a person who consented to sharing.

    An unrouted case keeps such a copy too, the *queued copy*, so that a coordinator may assign
    it (`Referral.assign`): it is never published as it is, and its association (the
    directory's first) and ids are replaced by the assignment's."""
    answers = submitted.questionnaire
    assert answers.contact is not None  # a copy exists only for people who gave a contact
    return ReferralV1(
        referral_id=referral_id_for(decision_id, association),
        reference=submitted.reference,
        association_id=association,
        urgent=answers.distress is Distress.YES and answers.consents.sensitive_data,
        stage=answers.situation.stage,
        region=answers.situation.region,
        department=answers.situation.department,
        needs=answers.needs,
        contact=answers.contact,
        message=answers.message,
        distress=answers.distress if answers.consents.sensitive_data else None,
        reasons=list(reasons),
        referred_at=now,
        respond_by=respond_by,
    )


@dataclass(frozen=True)
class StoredCandidate:
    """A referral candidate as the store keeps it between attempts."""

    association: AssociationId
    score: ScoreBreakdown
    reasons: tuple[Reason, ...]


def reorient(
    *,
    first_decision_id: UUID,
    attempt: int,
    template: ReferralV1,
    remaining: Sequence[StoredCandidate],
    scores: Sequence[ScoreBreakdown],
    rule_set_version: str,
    urgent: bool,
    now: datetime,
    directory: Directory,
    rule: DecisionRule = "scoring",
    note: str | None = None,
) -> RoutingDecisionV1:
    """Decision number `attempt`: the referral moves to `remaining[0]`, the next alternate (or
    the association a coordinator chose: `rule="manual"`, with their `note`)."""
    holder = remaining[0]
    decision_id = reorientation_id(first_decision_id, attempt)
    referral = template.model_copy(
        update={
            "referral_id": referral_id_for(decision_id, holder.association),
            "association_id": holder.association,
            "reasons": list(holder.reasons),
            "referred_at": now,
            "respond_by": now + directory.get(holder.association).response_deadline,
        }
    )
    reasons = list(holder.reasons) + ([RESOURCES_REASON] if urgent else [])
    return RoutingDecisionV1(
        decision_id=decision_id,
        reference=template.reference,
        rule_set_version=rule_set_version,
        primary=holder.association,
        alternates=[c.association for c in remaining[1:]],
        scores=list(scores),
        reasons=reasons,
        urgent=urgent,
        referral=referral,
        attempt=attempt,
        decided_at=now,
        rule=rule,
        note=note,
    )


def manual_reason(name: str) -> Reason:
    """Why a coordinator's choice holds the referral (`rule="manual"`)."""
    return Reason(
        code="manual",
        fr=f"l'équipe du groupement a choisi {name} pour vous accompagner",
        en=f"the grouping's team chose {name} to support you",
    )


def outcome_of(decision: RoutingDecisionV1) -> RoutingOutcomeV1:
    """What intake, which faces the internet, learns of a decision for the person's status
    page: the association, the attempt and the reasons, minus those that reveal distress."""
    return RoutingOutcomeV1(
        decision_id=decision.decision_id,
        reference=decision.reference,
        primary=decision.primary,
        attempt=decision.attempt,
        reasons=[r for r in decision.reasons if r.code not in DISTRESS_REASON_CODES],
        decided_at=decision.decided_at,
    )


def invitee_of(decision: RoutingDecisionV1) -> InviteeV1 | None:
    """What events learns of a decision: the invitation contact of a person who consented to
    invitations (and gave an e-mail), nothing about anyone else."""
    if decision.invitation is None:
        return None
    return InviteeV1(
        reference=decision.reference,
        contact=decision.invitation,
        decided_at=decision.decided_at,
    )
