"""A person's status timeline, built from the events intake consumed. Pure: no I/O.

Events may arrive twice or out of order: records are deduplicated by event id and sorted by
their own time. Only non-personal fields are kept from each event (see `record_of`), but two of
them may tell that the person said they are in distress (health data, GDPR art. 9): which
association was chosen (`DISTRESS_ASSOCIATIONS`: APESA serves only people in distress) and, in
records kept before `routing.outcomes` refused them, the decision's reasons (codes
`DISTRESS_REASONS`). The reference alone opens the status page, and it travels in URLs, e-mail
subjects and logs; so the public view (`build_timeline(..., private=False)`) of a person who
said they are in distress names no association and gives no reason, and no public view ever
shows a distress reason. The full view is for whoever also holds the erasure secret.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from rebond_contracts.associations import ASSOCIATION_NAMES, DISTRESS_ASSOCIATIONS, AssociationId
from rebond_contracts.payloads import (
    DeliveryChannel,
    DeliveryOutcome,
    DeliveryV1,
    PeerMatchStatus,
    PeerMatchV1,
    ReferralStatus,
    ReferralStatusV1,
    RoutingOutcomeV1,
)

#: Reason codes that say the person is in distress (the router's `distress` reason of a
#: distress-only association, and the crisis numbers it adds for a person in distress).
DISTRESS_REASONS = frozenset({"distress", "distress_resources"})
#: The ids of the associations that serve only people in distress, as records hold them.
_DISTRESS_IDS = frozenset(a.value for a in DISTRESS_ASSOCIATIONS)


@dataclass(frozen=True)
class Record:
    """One consumed event, reduced to what the timeline needs (no personal data)."""

    event_id: str
    reference: str
    kind: str  # "received", "decision", "status", "delivery", "peer" or "erasure"
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One line of the timeline, in one language."""

    code: str
    at: datetime
    text: str
    association_id: str | None = None
    association_name: str | None = None
    reasons: list[str] = field(default_factory=list)


def received(event_id: str, reference: str, at: datetime) -> Record:
    """The submission itself, once Kafka has it (read back from `questionnaires.completed`, or
    noted by the request that published it)."""
    return Record(event_id=event_id, reference=reference, kind="received", at=at)


#: What the timeline keeps of each payload it reads: the record's kind, the field that says
#: when it happened, and the fields of its detail (no personal data is among them).
_KEPT: dict[type[BaseModel], tuple[str, str, set[str]]] = {
    RoutingOutcomeV1: ("decision", "decided_at", {"primary", "attempt", "reasons"}),
    ReferralStatusV1: (
        "status", "at", {"status", "association_id", "reason", "next_association_id", "track"},
    ),
    DeliveryV1: ("delivery", "at", {"channel", "outcome", "association_id"}),
    # The step alone: no volunteer, no region.
    PeerMatchV1: ("peer", "at", {"status"}),
}  # fmt: skip


def record_of(event_id: str, payload: BaseModel) -> Record:
    """Reduce a consumed payload to a `Record`; raises TypeError for another payload."""
    try:
        kind, at, fields = _KEPT[type(payload)]
    except KeyError:
        raise TypeError(f"no timeline record for {type(payload).__name__}") from None
    detail = payload.model_dump(mode="json", include={"reference", *fields})
    reference = detail.pop("reference")
    return Record(event_id, reference, kind, getattr(payload, at), detail)


def _name(association_id: str | None) -> str | None:
    if association_id is None:
        return None
    try:
        return ASSOCIATION_NAMES[AssociationId(association_id)]
    except ValueError:
        return association_id


_TEXTS: dict[str, dict[str, str]] = {
    "received": {
        "fr": "Questionnaire reçu.",
        "en": "Questionnaire received.",
    },
    "oriented": {
        "fr": "Orientation proposée : {name}.",
        "en": "Suggested association: {name}.",
    },
    "not_oriented": {
        "fr": "Aucune association ne correspond automatiquement : l'équipe du portail étudie "
        "votre situation.",
        "en": "No association matched automatically: the portal team is looking at your situation.",
    },
    "reoriented": {
        "fr": "Nouvelle orientation : {name}.",
        "en": "New orientation: {name}.",
    },
    "offered": {
        "fr": "Votre demande a été transmise à {name}.",
        "en": "Your request was sent to {name}.",
    },
    "reminded": {
        "fr": "{name} a reçu un rappel.",
        "en": "{name} was reminded.",
    },
    "accepted": {
        "fr": "{name} a accepté votre demande et va vous contacter.",
        "en": "{name} accepted your request and will contact you.",
    },
    "declined": {
        "fr": "{name} ne peut pas donner suite.",
        "en": "{name} cannot follow up.",
    },
    "expired": {
        "fr": "{name} n'a pas répondu à temps.",
        "en": "{name} did not answer in time.",
    },
    "reoriented_status": {
        "fr": "Votre demande est réorientée vers {next}.",
        "en": "Your request is being re-oriented to {next}.",
    },
    "reoriented_status_unknown": {
        "fr": "Votre demande est réorientée.",
        "en": "Your request is being re-oriented.",
    },
    "unrouted": {
        "fr": "Aucune autre association n'est disponible : l'équipe du portail reprend votre "
        "demande.",
        "en": "No other association is available: the portal team takes over your request.",
    },
    "closed": {
        "fr": "Demande clôturée.",
        "en": "Request closed.",
    },
    "delivered": {
        "fr": "{name} a bien reçu votre demande.",
        "en": "{name} has received your request.",
    },
    "delivery_failed": {
        "fr": "La transmission à {name} a échoué ; l'équipe du portail est prévenue.",
        "en": "Sending to {name} failed; the portal team has been told.",
    },
    "erased": {
        "fr": "Vous avez retiré votre consentement : vos données sont effacées et "
        "l'association en est informée.",
        "en": "You withdrew your consent: your data is erased and the association is told.",
    },
    "person_email_sent": {
        "fr": "Un e-mail vous a été envoyé.",
        "en": "An e-mail was sent to you.",
    },
    "peer_proposed": {
        "fr": "Un pair vous a été proposé : un entrepreneur passé par là, prêt à échanger avec "
        "vous.",
        "en": "A peer was proposed to you: an entrepreneur who has been through it, happy to "
        "talk with you.",
    },
    "peer_unmatched": {
        "fr": "Pas encore de pair disponible dans votre région pour échanger.",
        "en": "No peer available in your region to talk with yet.",
    },
}
#: Steps of the peer exchange (`peers.matches`): beside the request, they never tell where it
#: stands (`current_status`). A decline shows nothing: the next proposal, or none left, follows.
_PEER_STEPS = {
    PeerMatchStatus.PROPOSED.value: "peer_proposed",
    PeerMatchStatus.UNMATCHED.value: "peer_unmatched",
}

#: How the public view names an association it must not name (`build_timeline`).
_UNNAMED = {"fr": "une association partenaire", "en": "a partner association"}

_DECLINE_REASONS: dict[str, dict[str, str]] = {
    "unreachable": {"fr": "Vous n'avez pas pu être joint.", "en": "You could not be reached."},
    "not_eligible": {
        "fr": "Votre situation ne correspond pas à son accompagnement.",
        "en": "Your situation is outside what it offers.",
    },
    "no_capacity": {
        "fr": "Elle n'a plus de place pour le moment.",
        "en": "It has no capacity at the moment.",
    },
    "duplicate": {"fr": "La demande existait déjà.", "en": "The request already existed."},
    "other": {"fr": "Autre raison.", "en": "Another reason."},
}

#: At equal times, the order in which things happen.
_ORDER = {"decision": 0, "status": 1, "delivery": 2, "peer": 3, "erasure": 4}


def text(code: str, locale: str, **values: str) -> str:
    template = _TEXTS[code]["en" if locale == "en" else "fr"]
    return template.format(**values)


def _says_distress(record: Record) -> bool:
    """Whether a decision record tells that the person said they are in distress."""
    reasons = record.detail.get("reasons", [])
    primary = record.detail.get("primary")
    return primary in _DISTRESS_IDS or any(r.get("code") in DISTRESS_REASONS for r in reasons)


def _concerns_distress(record: Record) -> bool:
    """Whether a status or delivery belongs to the distress track (APESA's referral, made
    beside the main one): its mere presence tells that the person said they are in distress."""
    detail = record.detail
    return (
        detail.get("track") == "distress"
        or detail.get("association_id") in _DISTRESS_IDS
        or detail.get("next_association_id") in _DISTRESS_IDS
    )


def _step(record: Record, lang: str, *, named: bool) -> Step | None:
    """The step of one record; unless `named`, it names no association (its text says "a
    partner association") and a decision gives no reason."""
    detail = record.detail

    def who(association: str | None) -> tuple[str | None, str | None, str]:
        """The association id and name the step carries, and the words naming it."""
        if not named:
            return None, None, _UNNAMED[lang]
        name = _name(association)
        return association, name, name or ("the association" if lang == "en" else "L'association")

    if record.kind == "received":
        return Step("received", record.at, text("received", lang))
    if record.kind == "decision":
        if detail.get("primary") is None:
            return Step("not_oriented", record.at, text("not_oriented", lang))
        code = "reoriented" if int(detail.get("attempt", 1)) > 1 else "oriented"
        association, name, words = who(detail["primary"])
        reasons = [str(r.get(lang) or r.get("fr") or "") for r in detail.get("reasons", [])]
        return Step(
            code, record.at, _sentence(text(code, lang, name=words)), association, name,
            [r for r in reasons if r and named],
        )  # fmt: skip
    if record.kind == "status":
        status = str(detail.get("status"))
        if status == ReferralStatus.REORIENTED.value:
            target = detail.get("next_association_id")
            if not target:
                return Step("reoriented", record.at, text("reoriented_status_unknown", lang))
            association, name, words = who(target)
            return Step(
                "reoriented", record.at, text("reoriented_status", lang, next=words),
                association, name,
            )  # fmt: skip
        if status not in _TEXTS:
            return None
        association, name, words = who(detail.get("association_id"))
        why: list[str] = []  # a decline's reason is about the answer, not about the person
        if status == ReferralStatus.DECLINED.value and detail.get("reason") in _DECLINE_REASONS:
            why = [_DECLINE_REASONS[detail["reason"]][lang]]
        return Step(
            status, record.at, _sentence(text(status, lang, name=words)), association, name, why
        )
    if record.kind == "delivery":
        outcome, channel = detail.get("outcome"), detail.get("channel")
        if channel == DeliveryChannel.PERSON_EMAIL.value:
            if outcome == DeliveryOutcome.SENT.value:
                return Step("person_email_sent", record.at, text("person_email_sent", lang))
            return None
        association, name, words = who(detail.get("association_id"))
        if outcome == DeliveryOutcome.SENT.value:
            return Step(
                "delivered", record.at, _sentence(text("delivered", lang, name=words)),
                association, name,
            )  # fmt: skip
        if outcome == DeliveryOutcome.DEAD_LETTERED.value:
            return Step(
                "delivery_failed", record.at, text("delivery_failed", lang, name=words),
                association, name,
            )  # fmt: skip
        return None  # a failed attempt is retried; the person need not see it
    if record.kind == "peer":
        peer_step = _PEER_STEPS.get(str(detail.get("status")))
        return Step(peer_step, record.at, text(peer_step, lang)) if peer_step else None
    if record.kind == "erasure":
        return Step("erased", record.at, text("erased", lang))
    return None


def _sentence(words: str) -> str:
    """`words` with a capital first letter ("a partner association…" may begin it)."""
    return words[:1].upper() + words[1:]


def build_timeline(records: list[Record], locale: str, *, private: bool = False) -> list[Step]:
    """Each distinct event in time order (the submission first), in the person's language.

    Once the person asked for erasure, only that the questionnaire was received and that it
    was erased. Otherwise, unless `private` (the person proved they hold the erasure secret),
    the public view: for a person who said they are in distress, or while no decision is known
    to say they did not, no association is named and no decision reason given (see the
    module's docstring), and nothing of the distress track (APESA's referral beside the main
    one) shows. A distress reason comes only with a decision that says so: the public view
    never shows one."""
    seen: dict[str, Record] = {}
    for record in records:
        seen.setdefault(record.event_id, record)
    ordered = sorted(  # received first whatever the clocks of the other services say
        seen.values(), key=lambda r: (r.kind != "received", r.at, _ORDER.get(r.kind, 9), r.event_id)
    )
    erasure = next((record for record in ordered if record.kind == "erasure"), None)
    if erasure is not None:
        ordered = [*[r for r in ordered if r.kind == "received"][:1], erasure]
    if not private:  # APESA's track stays out of the public view, whole
        ordered = [
            r for r in ordered if r.kind not in ("status", "delivery") or not _concerns_distress(r)
        ]
    decisions = [record for record in ordered if record.kind == "decision"]
    named = private or (bool(decisions) and not any(_says_distress(d) for d in decisions))
    lang = "en" if locale == "en" else "fr"
    steps = [_step(record, lang, named=named) for record in ordered]
    return [step for step in steps if step is not None]


def current_status(steps: list[Step]) -> str:
    """The last step that tells where the request stands (deliveries are details); once the
    person asked for erasure, nothing that follows changes it."""
    if any(step.code == "erased" for step in steps):
        return "erased"
    for step in reversed(steps):
        if step.code not in ("delivered", "person_email_sent", "reminded", *_PEER_STEPS.values()):
            return step.code
    return "received"
