"""The referral: one person's orientation, followed from the first decision until an
association accepts it, the human queue takes it, or the person withdraws.

A `Referral` is a value. Each command (`offer`, `answer` = `accept` or `decline`, `remind`,
`expire`, `reorient`, `unroute`, `assign`, `close`, `record_outcome`, `follow_up`,
`answer_follow_up`, `withdraw`) checks that it may happen now and returns a
`Transition`: the referral's new value, the events to publish (each with its registry topic and
its id) and the offer to count against the association's weekly capacity, if one was made. A
command that may not happen raises `Rejected` and changes nothing. There is no I/O and no clock
here: `now` and the directory are arguments, and `rebond_router.lifecycle` loads a referral,
applies a command and saves the result with its events in one transaction (the outbox).

**Why each event's id is derived, never random**: the id (`ce_id`) of a status is uuid5 of the
referral id and the status, of a decision's outcome, invitee and peer request uuid5 of the
decision id, of a decision its decision id (itself derived from the questionnaire's event id,
`rules`). A command
replayed after a crash, or an outbox flushed twice, thus publishes the very same events, which
readers recognise.

**Tracks.** A reference may hold several referrals side by side (a person in distress who
consented to share it is referred to APESA *and* to the association best suited to their
situation): a referral is keyed by its reference and its `Track`, and each runs the lifecycle
below on its own. The distress track's candidates are distress associations only, so it ends
with APESA or the human queue (urgent), never re-oriented to a non-distress association.

**Follow-up.** An accepted referral is followed up `follow_up_after` later (30 days by default):
unless the holder reported that it reached the person (`record_outcome`: contacted or
accompaniment started), `follow_up` publishes `follow_up_due` once (the state changes, so the
deadline task finds it no more), and the person's "no" (`answer_follow_up`) puts the case in the
human queue once (the state changes again).
"""

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple
from uuid import UUID, uuid5

from pydantic import BaseModel

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    Answer,
    DecisionRule,
    DeclineReason,
    FollowUpAnsweredV1,
    OutcomeKind,
    QuestionnaireCompletedV1,
    ReferralOutcomeV1,
    ReferralResponseV1,
    ReferralStatus,
    ReferralStatusV1,
    ReferralV1,
    RoutingDecisionV1,
    ScoreBreakdown,
    TriedAssociation,
    UnroutedReferralV1,
)
from rebond_contracts.questionnaire import Need, Region, Stage
from rebond_contracts.topics import (
    DECISIONS,
    INVITEES,
    OUTCOMES,
    PEER_REQUESTS,
    REFERRAL_STATUS,
    UNROUTED,
    Topic,
)
from rebond_router import rules
from rebond_router.directory import Directory
from rebond_router.rules import Routing, StoredCandidate, Track, invitee_of, outcome_of
from rebond_router.scoring import Features

__all__ = ["Track"]  # re-exported: a referral's key is (reference, track)


class State(StrEnum):
    """Where a referral stands. The contract's `ReferralStatus` names the *steps* published on
    `referrals.status` (declined, expired, re-oriented are steps, not places to stay); these
    are the states between steps, stored as these strings."""

    #: An association holds it and may answer until its deadline.
    OFFERED = "offered"
    #: Still held; the reminder went out.
    REMINDED = "reminded"
    ACCEPTED = "accepted"
    #: Accepted, and the person was asked whether they were contacted (`follow_up_due`).
    FOLLOW_UP_DUE = "follow_up_due"
    #: The person said they were contacted: nothing more to follow.
    FOLLOWED_UP = "followed_up"
    #: In the human queue: nobody could take it, or everyone declined or stayed silent.
    UNROUTED = "unrouted"
    #: A decision without a referral: the person did not consent to be contacted.
    NOT_SHARED = "not_shared"
    #: A coordinator closed the case from the human queue (`CaseClosedV1`): nothing follows.
    CLOSED = "closed"
    #: The person withdrew and asked for erasure: nothing more happens (the store forgets it).
    WITHDRAWN = "withdrawn"


#: The states in which the holder may still answer, and a deadline runs.
OPEN = frozenset({State.OFFERED, State.REMINDED})


#: The states in which the holder has accepted and may report what happened next.
ACCEPTED_STATES = frozenset({State.ACCEPTED, State.FOLLOW_UP_DUE, State.FOLLOWED_UP})
#: Outcomes that say the association reached the person: no follow-up is asked then.
REACHED = frozenset({OutcomeKind.CONTACTED, OutcomeKind.ACCOMPANIMENT_STARTED})
#: How long after an acceptance the person is asked whether they were contacted.
FOLLOW_UP_AFTER = timedelta(days=30)


@dataclass(frozen=True)
class Case:
    """What the human queue needs to pick a case up (no contact details): kept apart from the
    referral's copy, which goes at acceptance, so that a follow-up "no" can still describe it."""

    stage: Stage
    region: Region
    department: str | None
    needs: tuple[Need, ...]


class Key(NamedTuple):
    """What identifies a referral."""

    reference: str
    track: Track


class Rejected(ValueError):
    """A command that must not change anything (an answer from an association that does not
    hold the referral, a reminder that is not due…): the caller dead-letters or skips it."""


@dataclass(frozen=True)
class Event:
    """An event to publish: its registry topic, its payload and its id (`ce_id`)."""

    topic: Topic
    payload: BaseModel
    id: UUID


@dataclass(frozen=True)
class Offer:
    """A referral handed to an association: counted against its weekly capacity."""

    referral_id: UUID
    association: AssociationId
    at: datetime


@dataclass(frozen=True)
class Referral:
    """One referral of one reference (see the module's docstring)."""

    reference: str
    track: Track
    #: The first decision's id: re-orientations derive theirs from it.
    decision_id: UUID
    correlation_id: str
    rule_set_version: str
    #: The person said they are in distress (whatever they consented to share).
    urgent: bool
    state: State
    #: 1 for the first decision, n + 1 for each re-orientation.
    attempt: int
    #: The association that holds the referral (it stays named once it accepted).
    holder: AssociationId | None
    referral_id: UUID | None
    deadline: datetime | None
    remind_at: datetime | None
    reminded: bool
    #: Who may still receive it, holder first.
    candidates: tuple[StoredCandidate, ...]
    scores: tuple[ScoreBreakdown, ...]
    #: The associations it was offered to before, and how each offer ended.
    tried: tuple[TriedAssociation, ...]
    #: The referral to re-offer (with the person's contact); dropped once accepted.
    template: ReferralV1 | None
    updated_at: datetime
    #: The stored version this value was read at (the repository's optimistic lock).
    version: int = 0
    #: The person's situation, for the human queue (None in rows older than follow-ups).
    case: Case | None = None
    #: When the person is to be asked whether they were contacted (set at acceptance; None
    #: once the holder reported it reached them, or once asked).
    follow_up_at: datetime | None = None
    #: The holder's latest report of what happened after it accepted.
    outcome: OutcomeKind | None = None
    #: When the first decision was made, and what scoring read of the person (no contact, no
    #: free text): what the policy preview replays (None in rows older than it).
    decided_at: datetime | None = None
    features: Features | None = None

    @property
    def key(self) -> Key:
        return Key(self.reference, self.track)

    # --- the first decision ----------------------------------------------------------------

    @classmethod
    def offer(
        cls,
        routing: Routing,
        submitted: QuestionnaireCompletedV1,
        correlation_id: str,
        now: datetime,
        directory: Directory,
    ) -> "Transition":
        """The first decision: offered to the best candidate; without one, straight to the
        human queue if the person consented to be contacted, else a decision only."""
        decision = routing.decision
        referral = decision.referral
        state = (
            State.OFFERED if referral else State.UNROUTED if routing.unrouted else State.NOT_SHARED
        )
        remind_at = None
        if referral is not None:
            remind_at = _remind_at(referral, directory.get(referral.association_id).reminder_before)
        situation = submitted.questionnaire.situation
        new = cls(
            reference=decision.reference,
            track=routing.track,
            decision_id=decision.decision_id,
            correlation_id=correlation_id,
            rule_set_version=decision.rule_set_version,
            urgent=decision.urgent,
            state=state,
            attempt=1,
            holder=referral.association_id if referral else None,
            referral_id=referral.referral_id if referral else None,
            deadline=referral.respond_by if referral else None,
            remind_at=remind_at,
            reminded=False,
            candidates=tuple(
                StoredCandidate(c.association, c.score, c.reasons)
                for c in routing.referral_candidates
            ),
            scores=tuple(decision.scores),
            tried=(),
            template=referral or routing.queued,
            updated_at=now,
            case=Case(
                situation.stage, situation.region, situation.department,
                tuple(submitted.questionnaire.needs),
            ),
            decided_at=now, features=Features.of(submitted.questionnaire),
        )  # fmt: skip
        events = list(decision_events(decision))
        if routing.peer_request is not None:
            # Its id derives from the decision's, as the invitee's: a redelivered questionnaire
            # or a replayed outbox publishes the very same request, which events recognises.
            peer_id = uuid5(decision.decision_id, "peer-request")
            events.append(Event(PEER_REQUESTS, routing.peer_request, peer_id))
        if referral is not None:
            events.append(new._status(ReferralStatus.OFFERED, now, respond_by=referral.respond_by))
            return Transition(
                new, tuple(events), Offer(referral.referral_id, referral.association_id, now)
            )
        if routing.unrouted:
            events.append(new._unrouted(cause=routing.cause, now=now))
        return Transition(new, tuple(events))

    # --- the holder's answer ---------------------------------------------------------------

    def answer(
        self,
        association: AssociationId,
        response: ReferralResponseV1,
        now: datetime,
        directory: Directory,
        follow_up_after: timedelta = FOLLOW_UP_AFTER,
        *,
        full: Collection[AssociationId] = (),
    ) -> "Transition":
        """`association` (the topic it wrote to) accepts or declines: only the holder of this
        very referral, while it is open; an acceptance carries no decline reason. A decline
        moves on to a candidate not in `full` (`reorient`)."""
        self._check_holder(association, response.referral_id)
        self._check_open(response.referral_id)
        if response.answer is Answer.ACCEPT:
            if response.reason is not None:
                raise Rejected("an acceptance carries no decline reason")
            return self.accept(
                association, response.referral_id, now, follow_up_after,
                call_by=response.call_by, caller=response.caller,
            )  # fmt: skip
        reason = response.reason or DeclineReason.OTHER
        return self.decline(association, response.referral_id, reason, now, directory, full=full)

    def accept(
        self,
        association: AssociationId,
        referral_id: UUID,
        now: datetime,
        follow_up_after: timedelta = FOLLOW_UP_AFTER,
        *,
        call_by: datetime | None = None,
        caller: str | None = None,
    ) -> "Transition":
        """Accepted: the clock stops, the stored copy of the contact goes, and the follow-up is
        set `follow_up_after` from now. The status says who will call and when, as the
        association told it (its data, not the person's)."""
        self._check_holder(association, referral_id)
        self._check_open(referral_id)
        new = replace(
            self, state=State.ACCEPTED, template=None, updated_at=now,
            follow_up_at=now + follow_up_after,
        )  # fmt: skip
        accepted = new._status(ReferralStatus.ACCEPTED, now, call_by=call_by, caller=caller)
        return Transition(new, (accepted,))

    def decline(
        self,
        association: AssociationId,
        referral_id: UUID,
        reason: DeclineReason,
        now: datetime,
        directory: Directory,
        *,
        full: Collection[AssociationId] = (),
    ) -> "Transition":
        """Declined: said so, then moved on (`reorient`)."""
        self._check_holder(association, referral_id)
        self._check_open(referral_id)
        declined = self._status(ReferralStatus.DECLINED, now, reason=reason)
        moved = self.reorient(ReferralStatus.DECLINED, reason, now, directory, full=full)
        return moved.after(declined)

    # --- deadlines -------------------------------------------------------------------------

    def remind(self, now: datetime) -> "Transition":
        """Once, from `remind_at` until the deadline, while nobody answered."""
        due = (
            self.state is State.OFFERED
            and not self.reminded
            and self.remind_at is not None
            and self.deadline is not None
            and self.remind_at <= now < self.deadline
        )
        if not due:
            raise Rejected(f"no reminder is due for referral {self.referral_id} ({self.state})")
        new = replace(self, state=State.REMINDED, reminded=True, updated_at=now)
        return Transition(
            new, (new._status(ReferralStatus.REMINDED, now, respond_by=self.deadline),)
        )

    def expire(
        self, now: datetime, directory: Directory, *, full: Collection[AssociationId] = ()
    ) -> "Transition":
        """No answer by the deadline: said so, then moved on (`reorient`)."""
        self._check_open(self.referral_id)
        if self.deadline is None or self.deadline > now:
            raise Rejected(f"referral {self.referral_id} is not overdue")
        expired = self._status(ReferralStatus.EXPIRED, now)
        moved = self.reorient(ReferralStatus.EXPIRED, None, now, directory, full=full)
        return moved.after(expired)

    # --- moving on -------------------------------------------------------------------------

    def reorient(
        self,
        outcome: ReferralStatus,
        reason: DeclineReason | None,
        now: datetime,
        directory: Directory,
        *,
        full: Collection[AssociationId] = (),
    ) -> "Transition":
        """The holder's offer ended (`outcome`: declined or expired): the referral goes to the
        next candidate not paused in `directory` and not `full` this week (a new decision,
        attempt n + 1, with the same copy of the referral), else to the human queue
        (`unroute`; cause `no_capacity` when only full associations were left)."""
        self._check_open(self.referral_id)
        open_ = [c for c in self.candidates[1:] if _still_open(directory, c.association)]
        remaining = tuple(c for c in open_ if c.association not in full)
        if not remaining:
            cause = "no_capacity" if open_ else "all_declined_or_expired"
            return self.unroute(outcome, reason, now, cause=cause)
        if self.template is None:
            raise Rejected(f"referral {self.referral_id} has no copy left to offer again")
        decision = self._next_decision(self.template, remaining, now, directory)
        assert decision.primary is not None  # a reorientation offers
        reoriented = self._status(
            ReferralStatus.REORIENTED, now, next_association_id=decision.primary
        )
        return self._offered(
            decision, remaining, self._tried(outcome, reason), now, directory
        ).after(reoriented)

    def _next_decision(
        self,
        template: ReferralV1,
        remaining: tuple[StoredCandidate, ...],
        now: datetime,
        directory: Directory,
        rule: DecisionRule = "scoring",
        note: str | None = None,
    ) -> RoutingDecisionV1:
        """Decision n + 1 of this referral's track, offering `template` to `remaining[0]`: the
        track is passed on, so a distress track's next decision stays on it."""
        return rules.reorient(
            first_decision_id=self.decision_id,
            attempt=self.attempt + 1,
            template=template,
            remaining=remaining,
            scores=self.scores,
            rule_set_version=self.rule_set_version,
            urgent=self.urgent,
            now=now,
            directory=directory,
            track=self.track,
            rule=rule,
            note=note,
        )

    def _offered(
        self,
        decision: RoutingDecisionV1,
        candidates: tuple[StoredCandidate, ...],
        tried: tuple[TriedAssociation, ...],
        now: datetime,
        directory: Directory,
    ) -> "Transition":
        """A new decision (attempt n + 1) offers the referral to its primary association."""
        referral = decision.referral
        assert referral is not None and referral.respond_by is not None  # the decision offers
        holder = referral.association_id
        new = replace(
            self,
            state=State.OFFERED,
            attempt=decision.attempt,
            holder=holder,
            referral_id=referral.referral_id,
            deadline=referral.respond_by,
            remind_at=_remind_at(referral, directory.get(holder).reminder_before),
            reminded=False,
            candidates=candidates,
            tried=tried,
            updated_at=now,
        )
        events = (
            *decision_events(decision),
            new._status(ReferralStatus.OFFERED, now, respond_by=referral.respond_by),
        )
        return Transition(new, events, Offer(referral.referral_id, holder, now))

    # --- the grouping's coordinators -------------------------------------------------------

    def assign(
        self, association: AssociationId, note: str, now: datetime, directory: Directory
    ) -> "Transition":
        """A coordinator hands the queued case to `association` (`CaseAssignedV1`): a manual
        decision (attempt n + 1, the coordinator's note), offered from the case's stored copy,
        then the usual lifecycle; a decline or silence puts it back in the queue, as nobody
        else is a candidate."""
        self._check_queued()
        if self.template is None:
            raise Rejected(
                f"case {self.reference} has no copy of what the person shared left to assign"
            )
        try:
            entry = directory.get(association)
        except KeyError:
            raise Rejected(f"{association.value} is not in the directory") from None
        if entry.distress_only is not (self.track is Track.DISTRESS):
            # The distress answer reaches APESA alone, and APESA's being chosen would tell it
            # (`rules.outcome_of`): each track is assigned only to associations of its kind.
            kind = "a distress" if entry.distress_only else "not a distress"
            raise Rejected(
                f"{association.value} is {kind} association: it cannot hold the {self.track} "
                f"track of case {self.reference}"
            )
        name = entry.name
        chosen = StoredCandidate(
            association, ScoreBreakdown(association_id=association), (rules.manual_reason(name),)
        )
        decision = self._next_decision(
            self.template, (chosen,), now, directory, rule="manual", note=note
        )
        return self._offered(decision, (chosen,), self.tried, now, directory)

    def close(self, now: datetime) -> "Transition":
        """A coordinator closes the queued case (`CaseClosedV1`): `closed` is said, and the
        stored copy of what the person shared goes, as nothing more will be offered."""
        self._check_queued()
        new = replace(self, state=State.CLOSED, template=None, updated_at=now)
        payload = ReferralStatusV1(
            reference=self.reference,
            referral_id=self.referral_id,
            status=ReferralStatus.CLOSED,
            at=now,
        )
        return Transition(
            new, (Event(REFERRAL_STATUS, payload, uuid5(self.decision_id, "closed")),)
        )

    def unroute(
        self,
        outcome: ReferralStatus,
        reason: DeclineReason | None,
        now: datetime,
        *,
        cause: str = "all_declined_or_expired",
    ) -> "Transition":
        """The holder's offer ended (`outcome`) and nobody is left: the human queue takes the
        case (who was tried and how it ended; no contact details)."""
        self._check_open(self.referral_id)
        if self.template is None:
            raise Rejected(f"referral {self.referral_id} has no copy left to describe the case")
        new = replace(
            self, state=State.UNROUTED, holder=None, candidates=(),
            tried=self._tried(outcome, reason), updated_at=now,
        )  # fmt: skip
        events = (
            self._status(ReferralStatus.UNROUTED, now),
            new._unrouted(cause=cause, now=now),
        )
        return Transition(new, events)

    # --- after an acceptance ---------------------------------------------------------------

    def record_outcome(
        self, association: AssociationId, outcome: ReferralOutcomeV1, now: datetime
    ) -> "Transition":
        """The holder reports what happened after it accepted (the holder only, once it
        accepted). An outcome saying it reached the person cancels a follow-up not yet asked;
        nothing is published (the person is told nothing new)."""
        self._check_holder(association, outcome.referral_id)
        if self.state not in ACCEPTED_STATES:
            raise Rejected(f"referral {outcome.referral_id} is {self.state}, not accepted")
        reached = outcome.outcome in REACHED
        follow_up_at = None if reached else self.follow_up_at
        new = replace(self, outcome=outcome.outcome, follow_up_at=follow_up_at, updated_at=now)
        return Transition(new)

    def follow_up(self, now: datetime) -> "Transition":
        """Once, from `follow_up_at` on, while accepted: the person is to be asked whether
        they were contacted (the notifier sends the question). A reported contact left no
        `follow_up_at` (`record_outcome`), so the deadline task never finds it."""
        due = (
            self.state is State.ACCEPTED
            and self.follow_up_at is not None
            and self.follow_up_at <= now
        )
        if not due:
            raise Rejected(f"no follow-up is due for referral {self.referral_id} ({self.state})")
        new = replace(self, state=State.FOLLOW_UP_DUE, follow_up_at=None, updated_at=now)
        return Transition(new, (new._status(ReferralStatus.FOLLOW_UP_DUE, now),))

    def answer_follow_up(self, answer: FollowUpAnsweredV1, now: datetime) -> "Transition":
        """The person's answer to the follow-up, about this very referral and while asked:
        "yes" ends the following; "no" puts the case in the human queue (urgent if the referral
        was), the association that accepted named among those tried."""
        if self.referral_id != answer.referral_id:
            raise Rejected(f"the follow-up answer is not about referral {self.referral_id}")
        if self.state is not State.FOLLOW_UP_DUE:
            raise Rejected(f"no follow-up is awaited for referral {self.referral_id}")
        if self.holder is not answer.association_id:
            raise Rejected(
                f"referral {self.referral_id} was not accepted by {answer.association_id}"
            )
        if answer.contacted:
            return Transition(replace(self, state=State.FOLLOWED_UP, updated_at=now))
        if self.case is None:
            raise Rejected(f"referral {self.referral_id} has no case left to describe")
        new = replace(
            self, state=State.UNROUTED, holder=None, candidates=(),
            tried=self._tried(ReferralStatus.ACCEPTED, None), updated_at=now,
        )  # fmt: skip
        queued = new._unrouted(
            cause="follow_up_not_contacted", now=now,
            event_id=uuid5(self.referral_id, "follow_up_not_contacted"),
        )  # fmt: skip
        return Transition(new, (self._status(ReferralStatus.UNROUTED, now), queued))

    # --- the person's withdrawal -----------------------------------------------------------

    def withdraw(self, now: datetime) -> "Transition":
        """The person withdrew and asked for erasure, whatever the state: nothing more happens
        to the referral. The router publishes nothing for it (the notifier tells the
        associations it reached); the repository then forgets the referral."""
        new = replace(self, state=State.WITHDRAWN, template=None, updated_at=now)
        return Transition(new)

    # --- helpers ---------------------------------------------------------------------------

    def _check_holder(self, association: AssociationId, referral_id: UUID | None) -> None:
        if self.holder is not association or self.referral_id != referral_id:
            raise Rejected(
                f"{association.value} does not hold referral {referral_id} of {self.reference}"
            )

    def _check_queued(self) -> None:
        if self.state is not State.UNROUTED:
            raise Rejected(f"case {self.reference} is not in the human queue ({self.state})")

    def _check_open(self, referral_id: UUID | None) -> None:
        if self.state not in OPEN:
            raise Rejected(f"referral {referral_id} is already {self.state}")

    def _tried(
        self, outcome: ReferralStatus, reason: DeclineReason | None
    ) -> tuple[TriedAssociation, ...]:
        assert self.holder is not None and self.referral_id is not None  # an open referral
        ended = TriedAssociation(
            association_id=self.holder, referral_id=self.referral_id, outcome=outcome,
            reason=reason,
        )  # fmt: skip
        return (*self.tried, ended)

    def _status(
        self,
        status: ReferralStatus,
        now: datetime,
        *,
        reason: DeclineReason | None = None,
        next_association_id: AssociationId | None = None,
        respond_by: datetime | None = None,
        call_by: datetime | None = None,
        caller: str | None = None,
    ) -> Event:
        """A step of this referral (its current referral id and holder) on `referrals.status`."""
        assert self.referral_id is not None  # statuses are about an offer
        payload = ReferralStatusV1(
            reference=self.reference,
            referral_id=self.referral_id,
            association_id=self.holder,
            status=status,
            reason=reason,
            next_association_id=next_association_id,
            respond_by=respond_by,
            at=now,
            track=self.track.value,
            call_by=call_by,
            caller=caller,
        )
        return Event(REFERRAL_STATUS, payload, uuid5(self.referral_id, status.value))

    def _unrouted(self, *, cause: str, now: datetime, event_id: UUID | None = None) -> Event:
        """The human queue: a person who consented to be contacted and whom nobody holds, with
        the contact they shared while the stored copy is kept (it exists only with their
        consent to sharing, which names the grouping's team among its recipients; it goes at an
        acceptance, so a follow-up's "no" is described from the `case` alone, without contact).
        Its id is the track's decision's and the attempt's (the distress track's decision id is
        its own, `rules.distress_track_id`): a case assigned by a coordinator and declined again
        is queued again, a new event. A follow-up's "no" gives its own `event_id`, as it comes
        after the attempt's referral was accepted."""
        template = self.template
        if template is not None:
            case = Case(template.stage, template.region, template.department, tuple(template.needs))
        else:
            assert self.case is not None  # callers check that the case can be described
            case = self.case
        payload = UnroutedReferralV1(
            reference=self.reference, urgent=self.urgent, stage=case.stage, region=case.region,
            needs=list(case.needs), cause=cause, tried=list(self.tried),
            rule_set_version=self.rule_set_version, at=now,
            contact=template.contact if template is not None else None,
            department=case.department,
        )  # fmt: skip
        suffix = "unrouted" if self.attempt == 1 else f"unrouted-{self.attempt}"
        return Event(UNROUTED, payload, event_id or uuid5(self.decision_id, suffix))


@dataclass(frozen=True)
class Transition:
    """What a command did: the referral's new value, the events to publish in this order, and
    the offer made (for the weekly capacity), if any."""

    referral: Referral
    events: tuple[Event, ...] = ()
    offer: Offer | None = None

    @property
    def decisions(self) -> list[RoutingDecisionV1]:
        """The decisions among the events (the decisions metric counts them once committed)."""
        return [e.payload for e in self.events if isinstance(e.payload, RoutingDecisionV1)]

    def after(self, *first: Event) -> "Transition":
        """The same transition with `first` published before its own events."""
        return Transition(self.referral, (*first, *self.events), self.offer)


#: The most events one questionnaire publishes: on the main track the decision, its outcome, its
#: invitee, its peer request and the offer's status (or the human queue's event); on the
#: distress track the decision and the offer's status (or the human queue's event).
EVENTS_PER_DECISION = 7


def decision_events(decision: RoutingDecisionV1) -> tuple[Event, ...]:
    """A decision for the notifier, and what of it intake (the outcome) and events (the
    invitee, if the person consented to invitations) may know, on topics of their own, all
    published together so that none goes out without the others. The distress track has
    neither outcome nor invitee (`outcome_of`)."""
    events = [Event(DECISIONS, decision, decision.decision_id)]
    if (outcome := outcome_of(decision)) is not None:
        events.append(Event(OUTCOMES, outcome, uuid5(decision.decision_id, "outcome")))
    if (invitee := invitee_of(decision)) is not None:
        events.append(Event(INVITEES, invitee, uuid5(decision.decision_id, "invitee")))
    return tuple(events)


def week_start(now: datetime) -> datetime:
    """Monday 00:00 (in `now`'s zone, UTC in the router) of `now`'s week: the weekly capacity
    counts the offers made since then."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _remind_at(referral: ReferralV1, before: timedelta | None) -> datetime | None:
    if referral.respond_by is None or before is None:
        return None
    return referral.respond_by - before


def _still_open(directory: Directory, association: AssociationId) -> bool:
    """Whether `association` may still receive referrals (listed, and not paused)."""
    try:
        return not directory.get(association).paused
    except KeyError:
        return False
