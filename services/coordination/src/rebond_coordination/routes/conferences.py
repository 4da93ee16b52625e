"""Organisers' conferences (#22 item 6), through the events service's organiser API (the
`EventsClient` port). The events API checks every field; its 422 errors are shown in the form's
error summary, field by field. A conference the API does not know (or not for this association)
is a 404 page, the API down a 503 page: both handled once, in `app.py`."""

import csv
import io
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from rebond_contracts.associations import AssociationId
from rebond_coordination.ports import Conference, EventsInvalid
from rebond_coordination.web import (
    PARIS,
    Deps,
    Form,
    NotFound,
    Organiser,
    Signed,
    association_choices,
    field,
    render,
    see_other,
)

router = APIRouter(include_in_schema=False)
KINDS = {
    "conference": "Conférence", "peer_exchange": "Échanges entre pairs",
    "success_stories": "Témoignages de rebond",
}  # fmt: skip
FIELDS = (
    "title", "description", "kind", "starts_at", "ends_at", "venue_address", "city", "region",
    "department", "online_url", "capacity",
)  # fmt: skip
#: The events API's messages are English; the form says the same in French, field by field.
FIELD_TEXTS = {
    "title": "Indiquez un titre (150 caractères au plus).",
    "kind": "Choisissez le format.",
    "starts_at": "Indiquez le début (date et heure).",
    "ends_at": "Indiquez une fin postérieure au début.",
    "venue_address": "Indiquez l'adresse du lieu.",
    "city": "Indiquez la ville.",
    "region": "Choisissez la région.",
    "department": "Indiquez un numéro de département de la région choisie (par exemple 33).",
    "online_url": "Indiquez une adresse web complète (https://…) ou laissez vide.",
    "capacity": "Indiquez un nombre de places entre 1 et 100 000.",
    "description": "La description fait plus de 5 000 caractères.",
}


def _managed(association: str, signed: Organiser) -> str:
    """The path's association, whose conferences these are; 404 when not this person's to
    manage."""
    if association not in {a.value for a in AssociationId} or not signed.scope.conferences_of(
        association
    ):
        raise NotFound()
    return association


#: The association of a conferences page, checked as `_managed` does.
Managed = Annotated[str, Depends(_managed)]


async def _log(
    deps: Deps, signed: Signed, action: str, association: str, event_id: str, **detail: object
) -> None:
    """The audit entry of an organiser's action on one of `association`'s conferences."""
    await deps.store.log(
        signed.scope, action, deps.clock(), association_id=association, subject=event_id,
        **detail,
    )  # fmt: skip


@router.get("/conferences")
async def conferences_home(signed: Organiser) -> Response:
    return see_other(
        f"/conferences/{signed.scope.association or AssociationId.SECOND_SOUFFLE.value}"
    )


@router.get("/conferences/{association}", response_class=HTMLResponse)
async def conferences(
    request: Request, association: Managed, signed: Organiser, deps: Deps
) -> HTMLResponse:
    events = await deps.events.list_events(association)
    return render(
        request, "conferences.html",
        {"association": association, "events": sorted(events, key=lambda e: e.starts_at),
         "kinds": KINDS, "associations": association_choices()},
        signed=signed,
    )  # fmt: skip


def _form_page(
    request: Request, signed: Signed, association: str, *, event: Conference | None,
    values: dict[str, str], errors: list[tuple[str, str]], status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    return render(
        request, "conference_form.html",
        {"association": association, "event": event, "values": values, "errors": errors, "kinds": KINDS},
        signed=signed, status_code=status_code,
    )  # fmt: skip


def _values_of(event: Conference) -> dict[str, str]:

    def local(moment: datetime) -> str:
        return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")

    return {
        "title": event.title, "description": event.description, "kind": event.kind,
        "starts_at": local(event.starts_at), "ends_at": local(event.ends_at),
        "venue_address": event.venue_address, "city": event.city, "region": event.region,
        "department": event.department, "online_url": event.online_url or "",
        "capacity": str(event.capacity),
    }  # fmt: skip


def _data(form: Form) -> tuple[dict[str, str], dict[str, object]]:
    """The form's values (to show again) and the API body. Nothing is refused here: the events
    API checks every field at once, so the form shows all its errors together."""
    values = {name: field(form, name) for name in FIELDS}
    data: dict[str, object] = {name: value for name, value in values.items() if name != "capacity"}
    data["online_url"] = values["online_url"] or None
    capacity = values["capacity"]
    data["capacity"] = int(capacity) if capacity.isdigit() else capacity
    return values, data


def _api_errors(invalid: EventsInvalid) -> list[tuple[str, str]]:
    """The events API's 422 `detail`, one entry per field, in French where we know the field."""
    errors: list[tuple[str, str]] = []
    for error in invalid.errors:
        name = (error.field or "").split(".")[0]
        target = name if name in FIELDS else "title"
        text = FIELD_TEXTS.get(name, error.msg)
        if (target, text) not in errors:
            errors.append((target, text))
    return errors


@router.get("/conferences/{association}/nouvelle", response_class=HTMLResponse)
async def new_form(request: Request, association: Managed, signed: Organiser) -> HTMLResponse:
    return _form_page(
        request, signed, association, event=None, values={"kind": "conference"}, errors=[]
    )


@router.post("/conferences/{association}/nouvelle", response_class=HTMLResponse)
async def create(
    request: Request, association: Managed, signed: Organiser, form: Form, deps: Deps
) -> Response:
    values, data = _data(form)
    try:
        event = await deps.events.create_event(association, data)
    except EventsInvalid as invalid:
        return _form_page(
            request, signed, association, event=None, values=values,
            errors=_api_errors(invalid), status_code=422,
        )  # fmt: skip
    await _log(deps, signed, "conference_created", association, event.id)
    return see_other(f"/conferences/{association}?fait=creee")


@router.get("/conferences/{association}/{event_id}/modifier", response_class=HTMLResponse)
async def edit_form(
    request: Request, association: Managed, event_id: str, signed: Organiser, deps: Deps
) -> HTMLResponse:
    event = await deps.events.get_event(association, event_id)
    return _form_page(
        request, signed, association, event=event, values=_values_of(event), errors=[]
    )


@router.post("/conferences/{association}/{event_id}/modifier", response_class=HTMLResponse)
async def edit(
    request: Request, association: Managed, event_id: str, signed: Organiser, form: Form, deps: Deps
) -> Response:
    values, data = _data(form)
    event = await deps.events.get_event(association, event_id)
    current = _values_of(event)
    changes = {k: v for k, v in data.items() if str(v or "") != current.get(k, "")}
    try:
        await deps.events.update_event(association, event_id, changes)
    except EventsInvalid as invalid:
        return _form_page(
            request, signed, association, event=event, values=values,
            errors=_api_errors(invalid), status_code=422,
        )  # fmt: skip
    await _log(deps, signed, "conference_updated", association, event_id, fields=sorted(changes))
    return see_other(f"/conferences/{association}?fait=modifiee")


@router.post("/conferences/{association}/{event_id}/annuler")
async def cancel(
    request: Request, association: Managed, event_id: str, signed: Organiser, form: Form, deps: Deps
) -> Response:
    await deps.events.cancel_event(association, event_id)
    await _log(deps, signed, "conference_cancelled", association, event_id)
    return see_other(f"/conferences/{association}?fait=annulee")


@router.get("/conferences/{association}/{event_id}/inscriptions", response_class=HTMLResponse)
async def registrations(
    request: Request, association: Managed, event_id: str, signed: Organiser, deps: Deps
) -> HTMLResponse:
    event = await deps.events.get_event(association, event_id)
    people = await deps.events.registrations(association, event_id)
    return render(
        request, "registrations.html",
        {"association": association, "event": event, "people": people},
        signed=signed,
    )  # fmt: skip


@router.get("/conferences/{association}/{event_id}/inscriptions.csv")
async def registrations_csv(
    request: Request, association: Managed, event_id: str, signed: Organiser, deps: Deps
) -> Response:
    people = await deps.events.registrations(association, event_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Nom", "E-mail", "Statut", "Position en liste d'attente", "Inscrit·e le"])
    for person in people:
        writer.writerow([
            _cell(person.name), _cell(person.email), person.status, person.waitlist_position or "",
            person.registered_at.astimezone(PARIS).strftime("%Y-%m-%d %H:%M"),
        ])  # fmt: skip
    await _log(deps, signed, "registrations_exported", association, event_id)
    return Response(
        "\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="inscriptions-{event_id}.csv"'},
    )  # fmt: skip


def _cell(text: str) -> str:
    """A value a spreadsheet shows as text, never runs as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
