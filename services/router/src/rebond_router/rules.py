"""Orientation rules: pure functions from answers (and re-orientations) to routing decisions.

`decide` turns a questionnaire into the first decision of the `main` track (the association
best suited to the situation, never a distress association), `decide_distress` into that of the
`distress` track (APESA, beside the main one, only with the distress answer, the consent to be
contacted and the art. 9 consent); `reorient` turns a declined or expired referral into the
next decision of the same track. Ids are derived, never random:
the decision id is uuid5 of the questionnaire event id (a redelivery is recognisable), a
re-orientation's id is uuid5 of the first decision id and its attempt number, and a referral id
is uuid5 of its decision id and the association; the distress track's first decision id is
uuid5 of the main one's and the track.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    DISTRESS_REASON_CODES,
    AntennaV1,
    DecisionRule,
    InvitationContactV1,
    InviteeV1,
    PeerContactV1,
    PeerRequestV1,
    QuestionnaireCompletedV1,
    Reason,
    ReferralV1,
    RoutingDecisionV1,
    RoutingOutcomeV1,
    ScoreBreakdown,
)
from rebond_contracts.questionnaire import Distress, Need
from rebond_router.directory import Directory
from rebond_router.scoring import Candidate, Ranking, rank

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


class Track(StrEnum):
    """A line of referral for one reference (the contract's `Track`): each track is its own
    referral with its own lifecycle."""

    #: To the association best suited to the person's situation (never a distress association).
    MAIN = "main"
    #: To APESA, beside the main track: distress answered "yes" and the art. 9 consent.
    DISTRESS = "distress"


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
    #: What events needs to match the person with a peer volunteer (`peer_request_of`).
    peer_request: PeerRequestV1 | None = None

    @property
    def track(self) -> Track:
        return Track(self.decision.track)


def is_urgent(submitted: QuestionnaireCompletedV1) -> bool:
    """Urgent for the associations: distress answered "yes" or crisis words in the free text,
    and the art. 9 consent. Intake sets `crisis_words` only with that consent (and publishes
    the distress answer only with it), so the consent is checked here again rather than trusted:
    without it nothing about distress may reach an association, not even as a flag."""
    answers = submitted.questionnaire
    alarm = answers.distress is Distress.YES or bool(submitted.crisis_words)
    return alarm and answers.consents.sensitive_data


def distress_track_id(decision_id: UUID) -> UUID:
    """The first decision id of the distress track, from the main track's."""
    return uuid5(decision_id, f"track-{Track.DISTRESS.value}")


def decide(
    event_id: str,
    submitted: QuestionnaireCompletedV1,
    now: datetime,
    directory: Directory,
    offered_this_week: Mapping[AssociationId, int],
) -> Routing:
    """The main track's first decision: distress associations are left out (they have a track
    of their own, `decide_distress`), so the person always gets an association for their
    situation, and APESA is never shown to intake or re-offered on this track."""
    ranking = rank(submitted.questionnaire, directory, offered_this_week)
    return _routing(
        decision_id_for(event_id), Track.MAIN, of_track(ranking, Track.MAIN), ranking, submitted,
        now, directory,
    )  # fmt: skip


def decide_distress(
    main_decision_id: UUID,
    submitted: QuestionnaireCompletedV1,
    now: datetime,
    directory: Directory,
    offered_this_week: Mapping[AssociationId, int],
) -> Routing | None:
    """The distress track's first decision, or None: only for a person who answered distress
    "yes", consented to be contacted and gave the art. 9 consent. Its candidates are distress
    associations only, so that it ends with APESA or the human queue (urgent), never with an
    association the main track may already hold."""
    answers = submitted.questionnaire
    in_distress = answers.distress is Distress.YES and answers.consents.sensitive_data
    if not (in_distress and _shares(submitted)):
        return None
    ranking = rank(answers, directory, offered_this_week)
    return _routing(
        distress_track_id(main_decision_id), Track.DISTRESS, of_track(ranking, Track.DISTRESS),
        ranking, submitted, now, directory,
    )  # fmt: skip


def of_track(ranking: Ranking, track: Track) -> tuple[Candidate, ...]:
    """The candidates `track` may offer to, best first: distress associations on the distress
    track only, every other association on the main track only."""
    distress = track is Track.DISTRESS
    return tuple(c for c in ranking.candidates if c.distress_only is distress)


def _shares(submitted: QuestionnaireCompletedV1) -> bool:
    answers = submitted.questionnaire
    return answers.consents.share_with_association and answers.contact is not None


def _routing(
    decision_id: UUID,
    track: Track,
    candidates: tuple[Candidate, ...],
    ranking: Ranking,
    submitted: QuestionnaireCompletedV1,
    now: datetime,
    directory: Directory,
) -> Routing:
    """A first decision among `candidates` (the track's, best first; `ranking` holds every
    association's scores and why the others were left out): offered to the first if the person
    consented to be contacted."""
    answers = submitted.questionnaire
    urgent = is_urgent(submitted)
    shares = _shares(submitted)
    # The track's associations (APESA's kind on the distress track, the others on the main).
    own = [a.id for a in directory.associations if a.distress_only is (track is Track.DISTRESS)]
    referral_candidates = candidates if shares else ()
    primary = candidates[0] if candidates else None
    reasons = list(primary.reasons) if primary else []
    if answers.distress is Distress.YES or urgent:
        reasons.append(RESOURCES_REASON)
    referral = None
    if referral_candidates and answers.contact is not None:
        holder = referral_candidates[0]
        respond_by = now + directory.get(holder.association).response_deadline
        referral = _referral_copy(
            submitted, decision_id, track, holder.association, holder.reasons, now, respond_by,
            antenna=antenna_of(directory, holder.association, answers.situation.department),
        )  # fmt: skip
    invitation = None
    contact = answers.contact
    if (
        track is Track.MAIN
        and answers.consents.event_invitations
        and contact is not None
        and contact.email
    ):
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
        alternates=[c.association for c in candidates[1:]],
        scores=[c.score for c in ranking.candidates],
        reasons=reasons,
        urgent=urgent,
        referral=referral,
        attempt=1,
        invitation=invitation,
        decided_at=now,
        track=track.value,
        statistics_consent=answers.consents.statistics,
    )
    unrouted = shares and not referral_candidates
    queued = None
    if unrouted:
        placeholder = own[0] if own else directory.associations[0].id
        queued = _referral_copy(submitted, decision_id, track, placeholder, (), now)
    full = ranking.full_among(own)
    return Routing(
        decision=decision,
        referral_candidates=referral_candidates,
        unrouted=unrouted,
        cause="no_capacity" if full else "no_candidate",
        queued=queued,
        peer_request=peer_request_of(submitted, now) if track is Track.MAIN else None,
    )


def peer_request_of(submitted: QuestionnaireCompletedV1, now: datetime) -> PeerRequestV1 | None:
    """What events learns of a person who asked for `peer_support` and consented to share
    their contact (`_shares`, the consent a referral needs): where they are, their stage and
    sector, and the contact as given; never their answers, message or anything about distress.
    None for everyone else. Made on the main track's first decision only (`_routing`), so a
    person is asked for once, whatever re-orientations or distress track follow."""
    answers = submitted.questionnaire
    contact = answers.contact
    if Need.PEER_SUPPORT not in answers.needs or not _shares(submitted) or contact is None:
        return None
    return PeerRequestV1(
        reference=submitted.reference,
        region=answers.situation.region,
        stage=answers.situation.stage,
        sector=answers.situation.sector,
        contact=PeerContactV1(
            first_name=contact.first_name, email=contact.email, phone=contact.phone
        ),
        locale=answers.locale.value,
        requested_at=now,
        statistics_consent=answers.consents.statistics,
    )


def _referral_copy(
    submitted: QuestionnaireCompletedV1,
    decision_id: UUID,
    track: Track,
    association: AssociationId,
    reasons: Sequence[Reason],
    now: datetime,
    respond_by: datetime | None = None,
    *,
    antenna: AntennaV1 | None = None,
) -> ReferralV1:
    """What an association of `track` receives of a person who consented to sharing.

    An unrouted case keeps such a copy too, the *queued copy*, so that a coordinator may assign
    it (`Referral.assign`): it is never published as it is, and its association (the track's
    first in the directory) and ids are replaced by the assignment's. Being made here like any
    referral, it is urgent and carries the distress answer exactly as the track's referral would
    (so a queued distress-track case is urgent, and a main-track one never tells distress)."""
    answers = submitted.questionnaire
    assert answers.contact is not None  # a copy exists only for people who gave a contact
    return ReferralV1(
        referral_id=referral_id_for(decision_id, association),
        reference=submitted.reference,
        association_id=association,
        urgent=is_urgent(submitted),
        stage=answers.situation.stage,
        region=answers.situation.region,
        department=answers.situation.department,
        needs=answers.needs,
        contact=answers.contact,
        message=answers.message,
        # The art. 9 consent lets APESA call the person: the distress answer goes to
        # APESA's referral alone, never to the main track's association.
        distress=(
            answers.distress
            if track is Track.DISTRESS and answers.consents.sensitive_data
            else None
        ),
        reasons=list(reasons),
        referred_at=now,
        respond_by=respond_by,
        locale=answers.locale.value,
        antenna=antenna,
    )


def antenna_of(
    directory: Directory, association: AssociationId, department: str | None
) -> AntennaV1 | None:
    """The antenna of `association` serving the person's `department` (the questionnaire's,
    which the referral carries), as the referral names it; None: the association itself."""
    antenna = directory.get(association).antenna_for(department)
    return antenna.contact() if antenna is not None else None


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
    track: Track = Track.MAIN,
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
            # The new holder's antenna, from the directory in force: not the previous one's.
            "antenna": antenna_of(directory, holder.association, template.department),
            "note": note,  # the association reads the coordinator's note with the referral
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
        track=track.value,
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


def outcome_of(decision: RoutingDecisionV1) -> RoutingOutcomeV1 | None:
    """What intake, which faces the internet, learns of a main track's decision for the
    person's status page: the association, the attempt, the reasons minus those that reveal
    distress, one alternative and the association's deadline. None for the distress track: that
    APESA was chosen would itself reveal the distress answer. The alternative is never a
    distress association because the main track's candidates hold none (`decide`)."""
    if decision.track != Track.MAIN.value:
        return None
    return RoutingOutcomeV1(
        decision_id=decision.decision_id,
        reference=decision.reference,
        primary=decision.primary,
        attempt=decision.attempt,
        reasons=[r for r in decision.reasons if r.code not in DISTRESS_REASON_CODES],
        decided_at=decision.decided_at,
        alternates=decision.alternates[:1],
        respond_by=decision.referral.respond_by if decision.referral else None,
    )


def invitee_of(decision: RoutingDecisionV1) -> InviteeV1 | None:
    """What events learns of a decision: the invitation contact of a person who consented to
    invitations (and gave an e-mail), nothing about anyone else (the main track's only)."""
    if decision.invitation is None:
        return None
    return InviteeV1(
        reference=decision.reference,
        contact=decision.invitation,
        decided_at=decision.decided_at,
    )
