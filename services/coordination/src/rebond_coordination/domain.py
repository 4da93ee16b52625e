"""The console's pure rules: roles, the human queue's order and claims, answers and their
deadline, outcomes. No database, no web: table-tested in `tests/test_domain.py`."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Self, TypeVar

from rebond_contracts.associations import ASSOCIATION_NAMES, AssociationId
from rebond_contracts.payloads import DeclineReason


class Labelled(StrEnum):
    """A choice shown to staff: each member is written once, as `NAME = "value", "label"`; the
    value is what is stored and sent, the label (French) what the pages show."""

    _value_: str
    label: str

    # `label`'s default only types a lookup by value, `Role("member")`, which makes no member.
    def __new__(cls, value: str, label: str = "") -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member


L = TypeVar("L", bound=Labelled)


def labels(choices: type[L]) -> dict[L, str]:
    """Each member's label, in the enum's order (what the templates look labels up in)."""
    return {choice: choice.label for choice in choices}


class Role(Labelled):
    COORDINATOR = "coordinator", "Coordination du groupement"
    MEMBER = "member", "Membre d'association"
    ORGANISER = "organiser", "Organisateur de conférences"


ROLE_LABELS = labels(Role)


def association_name(association_id: str | None) -> str:
    """How an association is named to staff ('60 000 rebonds'); the id when unknown."""
    if association_id is None:
        return "—"
    try:
        return ASSOCIATION_NAMES[AssociationId(association_id)]
    except ValueError:
        return association_id


# --- The human queue ----------------------------------------------------------------------


class Cause(Labelled):
    """Why a case waits for a person of the grouping."""

    UNROUTED = "no_candidate", "Aucune association ne correspond"
    #: Associations fit, but every one has reached its weekly capacity (a hard limit).
    NO_CAPACITY = "no_capacity", "Les associations adaptées sont complètes cette semaine"
    ALL_DECLINED = (
        "all_declined_or_expired",
        "Toutes les associations ont décliné ou n'ont pas répondu",
    )
    EXPIRED = "expired", "Délai de réponse dépassé"
    NOT_CONTACTED = "not_contacted", "Suivi : la personne dit ne pas avoir été contactée"


CAUSE_LABELS = labels(Cause)


class CaseStatus(StrEnum):
    WAITING = "waiting"
    ASSIGNED = "assigned"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


class CloseOutcome(Labelled):
    """How a coordinator closes a queue case without assigning it."""

    CALLED_BACK = "called_back", "Rappelée et accompagnée par l'équipe du groupement"
    REDIRECTED = "redirected_elsewhere", "Orientée vers une autre structure (CIP, tribunal, …)"
    UNREACHABLE = "unreachable", "Injoignable"
    NO_LONGER_NEEDED = "no_longer_needed", "N'a plus besoin d'aide"


CLOSE_LABELS = labels(CloseOutcome)

DECLINE_LABELS = {
    DeclineReason.UNREACHABLE: "Personne injoignable",
    DeclineReason.NOT_ELIGIBLE: "Hors de notre champ",
    DeclineReason.NO_CAPACITY: "Plus de place",
    DeclineReason.DUPLICATE: "Déjà suivie chez nous",
    DeclineReason.OTHER: "Autre raison",
}


@dataclass(frozen=True)
class QueueEntry:
    """What ordering and claiming a case needs to know."""

    reference: str
    urgent: bool
    queued_at: datetime
    status: CaseStatus
    claimed_by: str | None = None
    claimed_at: datetime | None = None


def queue_order(entry: QueueEntry) -> tuple[bool, datetime, str]:
    """Urgent cases first, then the one waiting longest; the reference breaks ties so the order
    never depends on the database's whim."""
    return (not entry.urgent, entry.queued_at, entry.reference)


class ClaimVerdict(StrEnum):
    FREE = "free"  # nobody holds it (or the claim lapsed): it can be taken
    MINE = "mine"  # already held by this person (claiming again renews it)
    HELD = "held"  # another person holds it
    CLOSED = "closed"  # not waiting any more (assigned, closed, withdrawn)


def claim_verdict(
    entry: QueueEntry, user_id: str, now: datetime, claim_for: timedelta
) -> ClaimVerdict:
    """Who may work on a case now. A claim lapses after `claim_for`: a case is never stuck with
    someone who left. The store's claim (`Store.claim`) applies this very rule in one `UPDATE`,
    so of two concurrent claims exactly one matches the row."""
    if entry.status is not CaseStatus.WAITING:
        return ClaimVerdict.CLOSED
    if entry.claimed_by is None or entry.claimed_at is None:
        return ClaimVerdict.FREE
    if entry.claimed_by == user_id:
        return ClaimVerdict.MINE
    if entry.claimed_at + claim_for <= now:
        return ClaimVerdict.FREE
    return ClaimVerdict.HELD


# --- The associations' inbox --------------------------------------------------------------


class ReferralState(Labelled):
    OFFERED = "offered", "À traiter"
    ACCEPTED = "accepted", "Acceptée"
    DECLINED = "declined", "Déclinée"
    EXPIRED = "expired", "Délai dépassé"
    #: Re-oriented elsewhere after a decline or the deadline.
    MOVED_ON = "moved_on", "Proposée ailleurs"
    #: The person erased their data: nothing of them is left here.
    WITHDRAWN = "withdrawn", "Retirée"
    CLOSED = "closed", "Close"


STATE_LABELS = labels(ReferralState)


class AnswerVerdict(StrEnum):
    OK = "ok"
    LATE = "late"  # the deadline passed: the router has moved (or will move) the case on
    ANSWERED = "answered"  # already answered (here or through the e-mail link)
    GONE = "gone"  # withdrawn, moved on or closed


def answer_verdict(
    state: ReferralState, respond_by: datetime | None, now: datetime
) -> AnswerVerdict:
    """Whether an association may still accept or decline. The deadline is the router's: an
    answer after it would race the re-orientation, so it is refused here as the router would."""
    if state in (ReferralState.ACCEPTED, ReferralState.DECLINED):
        return AnswerVerdict.ANSWERED
    if state is not ReferralState.OFFERED:
        return AnswerVerdict.GONE
    if respond_by is not None and now >= respond_by:
        return AnswerVerdict.LATE
    return AnswerVerdict.OK


class Outcome(Labelled):
    """What happened after an association accepted (#22 item 4)."""

    CONTACTED = "contacted", "Personne contactée le…"
    ACCOMPANIMENT_STARTED = "accompaniment_started", "Accompagnement commencé"
    REDIRECTED = "redirected_elsewhere", "Orientée ailleurs"
    UNREACHABLE = "unreachable", "Personne injoignable"
    CLOSED = "closed", "Dossier clos"


OUTCOME_LABELS = labels(Outcome)


def outcome_error(
    state: ReferralState, outcome: Outcome, on: date | None, today: date
) -> str | None:
    """Why this outcome cannot be recorded (in French, for the form), or None."""
    if state is not ReferralState.ACCEPTED:
        return "Un suivi ne peut être noté qu'après avoir accepté l'orientation."
    if outcome is Outcome.CONTACTED:
        if on is None:
            return "Indiquez la date à laquelle la personne a été contactée."
        if on > today:
            return "La date de contact ne peut pas être dans le futur."
    return None
