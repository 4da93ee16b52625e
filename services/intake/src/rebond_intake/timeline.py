"""A person's status timeline, built from the events intake consumed. Pure: no I/O.

Events may arrive twice or out of order: records are deduplicated by event id and sorted by
their own time. Only non-personal fields are kept from each event (see `record_of`).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from rebond_contracts.associations import ASSOCIATION_NAMES, AssociationId
from rebond_contracts.payloads import (
    DeliveryChannel,
    DeliveryOutcome,
    DeliveryV1,
    ReferralStatus,
    ReferralStatusV1,
    RoutingOutcomeV1,
)


@dataclass(frozen=True)
class Record:
    """One consumed event, reduced to what the timeline needs (no personal data)."""

    event_id: str
    reference: str
    kind: str  # "received", "decision", "status", "delivery" or "erasure"
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


def record_of(event_id: str, payload: BaseModel) -> Record:
    """Reduce a consumed payload to a `Record`; raises TypeError for another payload."""
    if isinstance(payload, RoutingOutcomeV1):
        return Record(
            event_id=event_id,
            reference=payload.reference,
            kind="decision",
            at=payload.decided_at,
            detail={
                "primary": payload.primary.value if payload.primary else None,
                "attempt": payload.attempt,
                "reasons": [r.model_dump() for r in payload.reasons],
            },
        )
    if isinstance(payload, ReferralStatusV1):
        return Record(
            event_id=event_id,
            reference=payload.reference,
            kind="status",
            at=payload.at,
            detail={
                "status": payload.status.value,
                "association_id": payload.association_id.value if payload.association_id else None,
                "reason": payload.reason.value if payload.reason else None,
                "next_association_id": (
                    payload.next_association_id.value if payload.next_association_id else None
                ),
            },
        )
    if isinstance(payload, DeliveryV1):
        return Record(
            event_id=event_id,
            reference=payload.reference,
            kind="delivery",
            at=payload.at,
            detail={
                "channel": payload.channel.value,
                "outcome": payload.outcome.value,
                "association_id": payload.association_id.value if payload.association_id else None,
            },
        )
    raise TypeError(f"no timeline record for {type(payload).__name__}")


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
}

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
_ORDER = {"decision": 0, "status": 1, "delivery": 2, "erasure": 3}


def text(code: str, locale: str, **values: str) -> str:
    template = _TEXTS[code]["en" if locale == "en" else "fr"]
    return template.format(**values)


def _step(record: Record, locale: str) -> Step | None:
    lang = "en" if locale == "en" else "fr"
    detail = record.detail
    if record.kind == "received":
        return Step("received", record.at, text("received", lang))
    if record.kind == "decision":
        primary = detail.get("primary")
        reasons = [str(r.get(lang) or r.get("fr") or "") for r in detail.get("reasons", [])]
        if primary is None:
            return Step("not_oriented", record.at, text("not_oriented", lang))
        code = "reoriented" if int(detail.get("attempt", 1)) > 1 else "oriented"
        name = _name(primary) or ""
        return Step(
            code, record.at, text(code, lang, name=name), primary, name, [r for r in reasons if r]
        )
    if record.kind == "status":
        status = str(detail.get("status"))
        association = detail.get("association_id")
        name = _name(association) or ("the association" if lang == "en" else "L'association")
        if status == ReferralStatus.REORIENTED.value:
            target = detail.get("next_association_id")
            if target:
                words = text("reoriented_status", lang, next=_name(target) or "")
            else:
                words = text("reoriented_status_unknown", lang)
            return Step("reoriented", record.at, words, target, _name(target))
        if status not in _TEXTS:
            return None
        words = text(status, lang, name=name)
        why: list[str] = []
        if status == ReferralStatus.DECLINED.value and detail.get("reason") in _DECLINE_REASONS:
            why = [_DECLINE_REASONS[detail["reason"]][lang]]
        return Step(status, record.at, words, association, _name(association), why)
    if record.kind == "delivery":
        outcome, channel = detail.get("outcome"), detail.get("channel")
        association = detail.get("association_id")
        name = _name(association) or ("the association" if lang == "en" else "L'association")
        if channel == DeliveryChannel.PERSON_EMAIL.value:
            if outcome == DeliveryOutcome.SENT.value:
                return Step("person_email_sent", record.at, text("person_email_sent", lang))
            return None
        if outcome == DeliveryOutcome.SENT.value:
            return Step(
                "delivered", record.at, text("delivered", lang, name=name), association, name
            )
        if outcome == DeliveryOutcome.DEAD_LETTERED.value:
            return Step(
                "delivery_failed",
                record.at,
                text("delivery_failed", lang, name=name),
                association,
                name,
            )
        return None  # a failed attempt is retried; the person need not see it
    if record.kind == "erasure":
        return Step("erased", record.at, text("erased", lang))
    return None


def build_timeline(records: list[Record], locale: str) -> list[Step]:
    """Each distinct event in time order (the submission first), in the person's language."""
    seen: dict[str, Record] = {}
    for record in records:
        seen.setdefault(record.event_id, record)
    ordered = sorted(  # received first whatever the clocks of the other services say
        seen.values(), key=lambda r: (r.kind != "received", r.at, _ORDER.get(r.kind, 9), r.event_id)
    )
    steps: list[Step] = []
    for record in ordered:
        step = _step(record, locale)
        if step is not None:
            steps.append(step)
    return steps


def current_status(steps: list[Step]) -> str:
    """The last step that tells where the request stands (deliveries are details); once the
    person asked for erasure, nothing that follows changes it."""
    if any(step.code == "erased" for step in steps):
        return "erased"
    for step in reversed(steps):
        if step.code not in ("delivered", "person_email_sent", "reminded"):
            return step.code
    return "received"
