"""The public portal: upcoming conferences by region, each with a registration form.

Plain HTML forms (works without JavaScript), French, assets shipped in the package (no CDN).
"""

from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from rebond_contracts.geography import REGIONS
from rebond_contracts.payloads import ConferenceKind
from rebond_events.calendar import KIND_LABELS
from rebond_events.conferences import Conferences
from rebond_events.domain import to_paris
from rebond_events.errors import Conflict, Expired, Forbidden, NotFound
from rebond_events.models import EventPublic, RegistrationIn

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(regions=REGIONS, kinds=KIND_LABELS)
router = APIRouter(include_in_schema=False)

FIELD_MESSAGES = {
    "name": "Indiquez votre nom ou un prénom : des lettres, espaces, apostrophes, traits "
    "d'union et points d'initiales, 80 caractères au plus.",
    "email": "Indiquez une adresse e-mail valide, par exemple nom@exemple.fr.",
    "consent": "Cochez la case pour accepter d'être contacté·e au sujet de cette conférence.",
}

MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
    "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip
DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def day(moment: datetime) -> str:
    """'jeudi 14 janvier 2027', in Paris time."""
    moment = to_paris(moment)
    return f"{DAYS[moment.weekday()]} {moment.day} {MONTHS[moment.month - 1]} {moment.year}"


def hour(moment: datetime) -> str:
    """'18 h 30', in Paris time."""
    moment = to_paris(moment)
    return f"{moment.hour} h {moment.minute:02d}"


def when(event: EventPublic) -> str:
    """'jeudi 14 janvier 2027, de 18 h 30 à 20 h 30', in Paris time."""
    start, end = event.starts_at, event.ends_at
    text = f"{day(start)}, de {hour(start)} à "
    if to_paris(end).date() != to_paris(start).date():
        text += f"{day(end)}, "
    return text + hour(end)


templates.env.filters.update(when=when, day=day, hour=hour)


def _conferences(request: Request) -> Conferences:
    conferences: Conferences = request.app.state.conferences
    return conferences


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/evenements", status_code=307)


@router.get("/evenements", response_class=HTMLResponse)
async def listing(request: Request, region: Annotated[str | None, Query()] = None) -> HTMLResponse:
    chosen = region if region in REGIONS else None
    page = await _conferences(request).list_events(region=chosen, per_page=100)
    by_region: dict[str, list[EventPublic]] = defaultdict(list)
    for event in page.items:
        by_region[event.region].append(event)
    ordered = sorted(by_region.items(), key=lambda item: REGIONS[item[0]])
    return templates.TemplateResponse(
        request, "list.html", {"by_region": ordered, "chosen": chosen, "total": page.total}
    )


@router.get("/evenements/{event_id}", response_class=HTMLResponse)
async def detail(request: Request, event_id: UUID) -> HTMLResponse:
    try:
        event = await _conferences(request).get_event(str(event_id))
    except NotFound:
        return _message(request, "Conférence introuvable", "Cette conférence n'existe pas.", 404)
    community = request.app.state.community
    featured, attending = [], []
    if event.kind == ConferenceKind.SUCCESS_STORIES:  # a few published stories of its region
        featured = (await community.published_stories(event.region))[:3]
    if event.kind == ConferenceKind.PEER_EXCHANGE and event.status != "cancelled":
        attending = await community.attendees(event.id)  # listed with their consent
    return templates.TemplateResponse(
        request, "event.html",
        {"event": event, "errors": {}, "stories": featured, "peers": attending},
    )  # fmt: skip


@router.post("/evenements/{event_id}/inscription", response_class=HTMLResponse)
async def register(
    request: Request,
    event_id: UUID,
    name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    consent: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    conferences = _conferences(request)
    try:
        event = await conferences.get_event(str(event_id))
    except NotFound:
        return _message(request, "Conférence introuvable", "Cette conférence n'existe pas.", 404)
    try:
        data = RegistrationIn(name=name, email=email, consent=consent == "yes")
    except ValidationError as error:
        errors = {
            str(item["loc"][0]): FIELD_MESSAGES.get(str(item["loc"][0]), item["msg"])
            for item in error.errors()
        }
        return templates.TemplateResponse(
            request,
            "event.html",
            {"event": event, "errors": errors, "values": {"name": name, "email": email}},
            status_code=422,
        )
    try:
        await conferences.register(str(event_id), data)
    except Conflict:
        return _message(
            request,
            "Inscription impossible",
            "Cette conférence est annulée ou a déjà commencé.",
            409,
        )
    # The same page whatever happened (new, waitlisted, already registered): see api.register.
    return templates.TemplateResponse(request, "registered.html", {"event": event})


@router.get("/inscriptions/{registration_id}/annuler", response_class=HTMLResponse)
async def cancel_form(
    request: Request, registration_id: UUID, token: Annotated[str, Query()] = ""
) -> HTMLResponse:
    """A page with a button: e-mail scanners that open links must not cancel anything."""
    return templates.TemplateResponse(
        request, "cancel.html", {"registration_id": registration_id, "token": token}
    )


@router.post("/inscriptions/{registration_id}/annuler", response_class=HTMLResponse)
async def cancel(
    request: Request, registration_id: UUID, token: Annotated[str, Form()] = ""
) -> HTMLResponse:
    try:
        await _conferences(request).cancel_registration(str(registration_id), token)
    except (Forbidden, NotFound):
        return _message(
            request,
            "Lien d'annulation invalide",
            "Ce lien d'annulation n'est pas valide. Utilisez le lien reçu par e-mail.",
            403,
        )
    except Expired:
        return _message(
            request,
            "Lien d'annulation expiré",
            "Ce lien n'est plus valable : la conférence est terminée, ou vous vous êtes "
            "réinscrit·e depuis (utilisez alors le lien du dernier e-mail reçu).",
            410,
        )
    return _message(
        request,
        "Inscription annulée",
        "Votre inscription est annulée. Merci de nous avoir prévenus : "
        "votre place revient à une personne en liste d'attente.",
        200,
    )


def _message(request: Request, title: str, text: str, status_code: int) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "message.html", {"title": title, "text": text}, status_code=status_code
    )
