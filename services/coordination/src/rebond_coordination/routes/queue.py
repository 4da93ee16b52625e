"""The human queue (#21 item 2): cases waiting for the grouping's team, claimed one at a time,
assigned to an association or closed with an outcome."""

from collections.abc import Mapping
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import StaffNote
from rebond_coordination.domain import CaseStatus, ClaimVerdict, CloseOutcome, association_name
from rebond_coordination.ports import CaseAssigned, CaseClosed
from rebond_coordination.store import AssociationValues, CaseRow, Refused, new_id
from rebond_coordination.web import (
    Coordinator,
    Deps,
    Form,
    NotFound,
    Signed,
    field,
    fits,
    render,
    see_other,
)

router = APIRouter(include_in_schema=False)
NOTE_MAX = 1000
#: The note goes to the association with the assignment (`CaseAssignedV1.note`): its limits.
ASSIGN_NOTE_MAX = 500
STAFF_NOTE: TypeAdapter[str] = TypeAdapter(StaffNote)


@router.get("/file", response_class=HTMLResponse)
async def queue(request: Request, signed: Coordinator, deps: Deps) -> HTMLResponse:
    cases = await deps.store.queue(signed.scope)
    return render(
        request, "queue.html", {"cases": cases, "claim_minutes": deps.settings.claim_minutes},
        signed=signed,
    )  # fmt: skip


async def _case_page(
    request: Request, signed: Signed, deps: Deps, reference: str, *,
    errors: list[tuple[str, str]] | None = None, notice: str | None = None,
    values: dict[str, str] | None = None, status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    case = await deps.store.case(signed.scope, reference)
    if case is None:
        raise NotFound()
    directory, _ = await deps.store.directory()
    return render(
        request, "case.html",
        {"case": case, "errors": errors or [], "notice": notice, "values": values or {},
         "follow_ups": await deps.store.follow_ups(signed.scope, reference),
         "associations": _choices(directory), "held": _held(case, signed, deps),
         "claim_minutes": deps.settings.claim_minutes},
        signed=signed, status_code=status_code,
    )  # fmt: skip


def _held(case: CaseRow, signed: Signed, deps: Deps) -> bool:
    return case.status == CaseStatus.WAITING.value and case.claimed_by == signed.user.id


def _choices(directory: Mapping[str, AssociationValues]) -> list[tuple[str, str, bool]]:
    """Every association of the grouping: (id, name, paused?)."""
    return [
        (
            a.value,
            association_name(a.value),
            bool(directory[a.value].paused) if a.value in directory else False,
        )
        for a in AssociationId
    ]


@router.get("/file/{reference}", response_class=HTMLResponse)
async def case_page(
    request: Request, reference: str, signed: Coordinator, deps: Deps
) -> HTMLResponse:
    return await _case_page(request, signed, deps, reference)


@router.post("/file/{reference}/prendre", response_class=HTMLResponse)
async def claim(
    request: Request, reference: str, signed: Coordinator, form: Form, deps: Deps
) -> HTMLResponse:
    result = await deps.store.claim(
        signed.scope, reference, deps.clock(), timedelta(minutes=deps.settings.claim_minutes)
    )
    if result is None:
        raise NotFound()
    if result.verdict is ClaimVerdict.MINE:
        return await _case_page(
            request, signed, deps, reference, notice="Vous avez pris ce dossier en charge."
        )
    text = (
        f"{result.holder_name} a déjà pris ce dossier en charge."
        if result.verdict is ClaimVerdict.HELD
        else "Ce dossier n'attend plus : il a été attribué, clos ou retiré."
    )
    return await _case_page(
        request, signed, deps, reference, errors=[("claim", text)], status_code=409
    )


@router.post("/file/{reference}/liberer")
async def release(reference: str, signed: Coordinator, form: Form, deps: Deps) -> Response:
    if await deps.store.release(signed.scope, reference, deps.clock()) is None:
        raise NotFound()
    return see_other("/file")


@router.post("/file/{reference}/attribuer", response_class=HTMLResponse)
async def assign(
    request: Request, reference: str, signed: Coordinator, form: Form, deps: Deps
) -> Response:
    # A browser sends a textarea's line breaks as CRLF; the contract's note takes LF only.
    association, note = field(form, "association"), field(form, "note").replace("\r\n", "\n")
    values = {"association": association, "note": note}
    errors = []
    if association not in {a.value for a in AssociationId}:
        errors.append(("association", "Choisissez l'association à qui confier ce dossier."))
    if len(note) > ASSIGN_NOTE_MAX:
        errors.append(("note", f"La note fait plus de {ASSIGN_NOTE_MAX} caractères."))
    elif not fits(STAFF_NOTE, note):
        errors.append(("note", "La note contient un caractère de contrôle : retirez-le."))
    if errors:
        return await _case_page(
            request, signed, deps, reference, errors=errors, values=values, status_code=422
        )
    now = deps.clock()
    message = CaseAssigned(
        message_id=new_id(), at=now, reference=reference, association_id=association,
        note=note, coordinator_id=signed.user.id,
    )  # fmt: skip
    return await _resolve(
        request, signed, deps, reference, values, message=message,
        status=CaseStatus.ASSIGNED, association_id=association, note=note,
    )  # fmt: skip


@router.post("/file/{reference}/clore", response_class=HTMLResponse)
async def close(
    request: Request, reference: str, signed: Coordinator, form: Form, deps: Deps
) -> Response:
    outcome, note = field(form, "outcome"), field(form, "close_note")
    values = {"outcome": outcome, "close_note": note}
    errors = []
    if outcome not in {o.value for o in CloseOutcome}:
        errors.append(("outcome", "Choisissez comment ce dossier se termine."))
    if len(note) > NOTE_MAX:
        errors.append(("close_note", f"La note fait plus de {NOTE_MAX} caractères."))
    if errors:
        return await _case_page(
            request, signed, deps, reference, errors=errors, values=values, status_code=422
        )
    message = CaseClosed(
        message_id=new_id(), at=deps.clock(), reference=reference, outcome=outcome,
        coordinator_id=signed.user.id,
    )  # fmt: skip
    return await _resolve(
        request, signed, deps, reference, values, message=message,
        status=CaseStatus.CLOSED, outcome=outcome, note=note,
    )  # fmt: skip


async def _resolve(
    request: Request, signed: Signed, deps: Deps, reference: str, values: dict[str, str], *,
    message: CaseAssigned | CaseClosed, status: CaseStatus, association_id: str | None = None,
    outcome: str | None = None, note: str = "",
) -> Response:  # fmt: skip
    try:
        case = await deps.store.resolve(
            signed.scope, reference, deps.clock(), status=status, message=message,
            association_id=association_id, outcome=outcome, note=note,
        )  # fmt: skip
    except Refused as refused:
        return await _case_page(
            request, signed, deps, reference, errors=[("claim", refused.reason)], values=values,
            status_code=409,
        )  # fmt: skip
    if case is None:
        raise NotFound()
    await deps.relay.flush_quietly()
    return see_other(f"/file?fait={status.value}&dossier={reference}")
