"""The associations' inbox (#22 items 2 and 4): referrals held, accept or decline before the
deadline, then what happened."""

from datetime import date, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter

from rebond_contracts.payloads import Answer, CallerName, DeclineReason
from rebond_coordination.domain import AnswerVerdict, Outcome, outcome_error
from rebond_coordination.ports import AnswerGiven, OutcomeRecorded
from rebond_coordination.store import Refused, new_id
from rebond_coordination.web import (
    PARIS,
    Deps,
    Form,
    Member,
    NotFound,
    Signed,
    association_choices,
    chosen_association,
    field,
    fits,
    render,
    see_other,
)

router = APIRouter(include_in_schema=False)
COMMENT_MAX = 500
#: Who will call, as the contract takes it (`ReferralResponseV1.caller`).
CALLER: TypeAdapter[str] = TypeAdapter(CallerName)
VERDICT_TEXTS = {
    AnswerVerdict.LATE: "Le délai de réponse est passé : ce dossier a été (ou va être) proposé à "
    "une autre association. Votre réponse n'a pas été enregistrée.",
    AnswerVerdict.ANSWERED: "Une réponse a déjà été donnée pour cette orientation (ici ou par le "
    "lien reçu par e-mail).",
    AnswerVerdict.GONE: "Ce dossier n'est plus entre vos mains : il a été retiré ou proposé ailleurs.",
}


@router.get("/boite", response_class=HTMLResponse)
async def inbox(request: Request, signed: Member, deps: Deps) -> HTMLResponse:
    association = chosen_association(request, signed)
    rows = await deps.store.inbox(signed.scope, association)
    return render(
        request, "inbox.html",
        {"referrals": rows, "association": association,
         "associations": association_choices()},
        signed=signed,
    )  # fmt: skip


async def _referral_page(
    request: Request, signed: Signed, deps: Deps, referral_id: str, *,
    errors: list[tuple[str, str]] | None = None, values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    referral = await deps.store.referral(signed.scope, referral_id)
    if referral is None:
        raise NotFound()
    return render(
        request, "referral.html",
        {"referral": referral, "errors": errors or [], "values": values or {},
         "follow_ups": await deps.store.follow_ups(signed.scope, referral.reference),
         "today": deps.clock().astimezone(PARIS).date(), "unsent": await deps.store.unsent_ids()},
        signed=signed, status_code=status_code,
    )  # fmt: skip


@router.get("/boite/{referral_id}", response_class=HTMLResponse)
async def referral_page(
    request: Request, referral_id: str, signed: Member, deps: Deps
) -> HTMLResponse:
    return await _referral_page(request, signed, deps, referral_id)


@router.post("/boite/{referral_id}/reponse", response_class=HTMLResponse)
async def answer(
    request: Request, referral_id: str, signed: Member, form: Form, deps: Deps
) -> Response:
    choice, reason, comment = field(form, "answer"), field(form, "reason"), field(form, "comment")
    caller, call_by_text = field(form, "caller"), field(form, "call_by")
    values = {"answer": choice, "reason": reason, "comment": comment, "caller": caller,
              "call_by": call_by_text}  # fmt: skip
    errors = []
    if choice not in ("accept", "decline"):
        errors.append(("answer", "Choisissez : accepter ou décliner."))
    if choice == "decline" and reason not in {r.value for r in DeclineReason}:
        errors.append(("reason", "Choisissez la raison du refus."))
    if len(comment) > COMMENT_MAX:
        errors.append(("comment", f"Le commentaire fait plus de {COMMENT_MAX} caractères."))
    accept = choice == "accept"
    now = deps.clock()
    if accept and caller and not fits(CALLER, caller):
        errors.append(("caller", "Indiquez un prénom de 60 caractères au plus, sur une ligne."))
    call_by = _call_by(call_by_text) if accept and call_by_text else None
    if accept and call_by_text and (call_by is None or call_by <= now):
        errors.append(("call_by", "Indiquez une date et une heure à venir (JJ/MM/AAAA HH:MM)."))
    found = await deps.store.referral(signed.scope, referral_id)
    if found is None:
        raise NotFound()
    if errors:
        return await _referral_page(
            request, signed, deps, referral_id, errors=errors, values=values, status_code=422
        )
    caller_given = (caller or None) if accept else None
    message = AnswerGiven(
        message_id=new_id(), at=now, referral_id=referral_id, reference=found.reference,
        association_id=found.association_id, answer=Answer.ACCEPT if accept else Answer.DECLINE,
        reason=None if accept else DeclineReason(reason), comment=comment or None,
        call_by=call_by, caller=caller_given,
    )  # fmt: skip
    result = await deps.store.answer(
        signed.scope, referral_id, now, accept=accept, reason=None if accept else reason,
        comment=comment or None, message=message, call_by=call_by, caller=caller_given,
    )  # fmt: skip
    if result is None:
        raise NotFound()
    _, verdict = result
    if verdict is not AnswerVerdict.OK:
        return await _referral_page(
            request, signed, deps, referral_id, errors=[("answer", VERDICT_TEXTS[verdict])],
            values=values, status_code=409,
        )  # fmt: skip
    await deps.relay.flush_quietly()
    return see_other(f"/boite/{referral_id}?fait={choice}")


def _call_by(text: str) -> datetime | None:
    """A `datetime-local` field ("2026-12-08T10:30"), in Paris time; None when not one."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.replace(tzinfo=PARIS) if value.tzinfo is None else None


@router.post("/boite/{referral_id}/suite", response_class=HTMLResponse)
async def outcome(
    request: Request, referral_id: str, signed: Member, form: Form, deps: Deps
) -> Response:
    chosen, on_text = field(form, "outcome"), field(form, "contacted_on")
    values = {"outcome": chosen, "contacted_on": on_text}
    found = await deps.store.referral(signed.scope, referral_id)
    if found is None:
        raise NotFound()
    errors = []
    try:
        kind = Outcome(chosen)
    except ValueError:
        kind = None
        errors.append(("outcome", "Choisissez ce qui s'est passé."))
    contacted_on = None
    if on_text:
        try:
            contacted_on = date.fromisoformat(on_text)
        except ValueError:
            errors.append(("contacted_on", "Indiquez la date au format JJ/MM/AAAA."))
    today = deps.clock().astimezone(PARIS).date()
    if (
        kind is not None
        and not errors
        and (problem := outcome_error(found.state, kind, contacted_on, today))
    ):
        errors.append(("contacted_on" if kind is Outcome.CONTACTED else "outcome", problem))
    if errors or kind is None:
        return await _referral_page(
            request, signed, deps, referral_id, errors=errors, values=values, status_code=422
        )
    now = deps.clock()
    on = contacted_on if kind is Outcome.CONTACTED else None
    message = OutcomeRecorded(
        message_id=new_id(), at=now, referral_id=referral_id, reference=found.reference,
        association_id=found.association_id, outcome=kind.value, on=on or today,
    )  # fmt: skip
    try:
        await deps.store.record_outcome(
            signed.scope, referral_id, now, outcome=kind.value,
            contacted_on=on.isoformat() if on else None, message=message,
        )  # fmt: skip
    except Refused as refused:
        return await _referral_page(
            request, signed, deps, referral_id, errors=[("outcome", refused.reason)], values=values,
            status_code=409,
        )  # fmt: skip
    await deps.relay.flush_quietly()
    return see_other(f"/boite/{referral_id}?fait=suivi")
