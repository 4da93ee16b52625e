"""JSON API. Routes only translate: parse, call a use case (`conferences.Conferences`), reply."""

import hashlib
import hmac
import re
from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.security import APIKeyHeader
from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

from rebond_contracts.payloads import ConferenceKind
from rebond_contracts.questionnaire import Region
from rebond_events.calendar import ics
from rebond_events.conferences import Conferences
from rebond_events.models import (
    CancelRequest,
    CancelResult,
    EventIn,
    EventPage,
    EventPatch,
    EventPublic,
    RegistrationForOrganiser,
    RegistrationIn,
    RegistrationReceived,
)
from rebond_events.settings import EventsSettings

router = APIRouter(prefix="/v1")


def _iso_day(value: object) -> object:
    """Only `YYYY-MM-DD`: pydantic would also read `0` or `1700000000` as a day (a timestamp)."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise PydanticCustomError("date_format", "A day is written YYYY-MM-DD")
    return value


def _day_in_range(value: date) -> date:
    """Years 1970 to 9998: midnight in Paris on 0001-01-01 is in year 0 in UTC (an overflow)."""
    if not 1970 <= value.year <= 9998:
        raise PydanticCustomError("date_range", "A day between 1970 and 9998")
    return value


IsoDay = Annotated[date, BeforeValidator(_iso_day), AfterValidator(_day_in_range)]
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An organiser's API key")


def get_conferences(request: Request) -> Conferences:
    conferences: Conferences = request.app.state.conferences
    return conferences


def get_organiser(request: Request, key: Annotated[str | None, Depends(_api_key)]) -> str:
    """The organiser whose API key was presented; 401 without a known key."""
    settings: EventsSettings = request.app.state.settings
    if key:
        presented = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        for organiser, stored in settings.organiser_keys.items():
            if hmac.compare_digest(presented, stored):
                return organiser
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="Clé d'API d'organisateur absente ou inconnue (en-tête X-API-Key).",
        headers={"WWW-Authenticate": "X-API-Key"},
    )


#: 10,000 pages of up to 100: more than every conference there will ever be.
MAX_PAGE = 10_000

Store = Annotated[Conferences, Depends(get_conferences)]
Organiser = Annotated[str, Depends(get_organiser)]

_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No known organiser API key"},
    403: {"description": "Another organiser's conference"},
    404: {"description": "No such conference"},
}


#: What the public edge (`rebond_http`) may answer to any request with a body, before a route.
_GUARD: dict[int | str, dict[str, object]] = {
    413: {"description": "Body over EVENTS_MAX_BODY_BYTES"},
    415: {"description": "Neither JSON nor a form"},
    429: {"description": "Too many requests from this client; see Retry-After"},
}
_WRITE = {**_ERRORS, **_GUARD}


def _links(source: str, *operations: str) -> dict[str, dict[str, object]]:
    """OpenAPI links from an answer carrying a conference id (at `source`) to the operations
    on that conference: clients, and the stateful fuzz tests, follow them to real resources."""
    return {
        operation: {"operationId": operation, "parameters": {"event_id": source}}
        for operation in operations
    }


_ON_EVENT = (
    "get_event", "update_event", "cancel_event", "registrations", "register", "calendar_file",
)  # fmt: skip


@router.post(
    "/events",
    status_code=status.HTTP_201_CREATED,
    operation_id="create_event",
    responses={
        **_WRITE,
        201: {"description": "Scheduled", "links": _links("$response.body#/id", *_ON_EVENT)},
    },
)
async def create_event(data: EventIn, organiser: Organiser, store: Store) -> EventPublic:
    """Schedule a conference (announced on `conferences.events`)."""
    return await store.create_event(organiser, data)


@router.patch(
    "/events/{event_id}",
    operation_id="update_event",
    responses={**_WRITE, 409: {"description": "The conference is cancelled"}},
)
async def update_event(
    event_id: UUID, patch: EventPatch, organiser: Organiser, store: Store
) -> EventPublic:
    """Change a conference; registrants are told, a larger room promotes the waitlist."""
    return await store.update_event(organiser, str(event_id), patch)


@router.post(
    "/events/{event_id}/cancel",
    operation_id="cancel_event",
    responses={
        **_WRITE,
        200: {
            "description": "Cancelled",
            "links": _links("$response.body#/id", "get_event", "registrations", "register"),
        },
    },
)
async def cancel_event(event_id: UUID, organiser: Organiser, store: Store) -> EventPublic:
    """Cancel a conference; every registration is cancelled and its person told."""
    return await store.cancel_event(organiser, str(event_id))


@router.get(
    "/events/{event_id}/registrations",
    operation_id="registrations",
    responses={
        **_ERRORS,
        200: {
            "description": "Registrations, waitlist in order",
            "links": {
                "cancel_registration": {
                    "operationId": "cancel_registration",
                    "parameters": {"registration_id": "$response.body#/0/registration_id"},
                }
            },
        },
    },
)
async def registrations(
    event_id: UUID, organiser: Organiser, store: Store
) -> list[RegistrationForOrganiser]:
    """The organiser's list of registrations, waitlist in order."""
    return await store.registrations_of(organiser, str(event_id))


@router.get("/events", operation_id="list_events")
async def list_events(
    store: Store,
    region: Region | None = None,
    department: Annotated[str | None, Query(pattern=r"^(\d{2,3}|2A|2B)$")] = None,
    from_day: Annotated[IsoDay | None, Query(alias="from", description="YYYY-MM-DD")] = None,
    kind: ConferenceKind | None = None,
    # Bounded: an unbounded page overflows the database's OFFSET (a 500, not a 422).
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> EventPage:
    """Upcoming conferences (from today, or from `from`), soonest first."""
    return await store.list_events(
        region=region, department=department, from_day=from_day, kind=kind,
        page=page, per_page=per_page,
    )  # fmt: skip


@router.get("/events/{event_id}", operation_id="get_event", responses={404: _ERRORS[404]})
async def get_event(event_id: UUID, store: Store) -> EventPublic:
    return await store.get_event(str(event_id))


@router.get(
    "/events/{event_id}/calendar.ics",
    response_class=Response,
    operation_id="calendar_file",
    responses={200: {"content": {"text/calendar": {}}}, 404: _ERRORS[404]},
)
async def calendar_file(event_id: UUID, store: Store) -> Response:
    """The conference as an `.ics` file (add to my calendar)."""
    event = await store.get_event(str(event_id))
    return Response(
        ics(event),
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="conference-{event.id}.ics"'},
    )


#: What a person is told after registering, in their language (the same text whatever happened).
RECEIVED = {
    "fr": "Merci ! Nous vous écrivons à l'adresse indiquée : l'e-mail vous dit si une place vous "
    "attend ou si vous êtes sur liste d'attente, avec un lien pour annuler. Si cette adresse était "
    "déjà inscrite, nous y renvoyons ce lien.",
    "en": "Thank you! We are writing to the address you gave: the e-mail tells you whether a seat "
    "is waiting for you or you are on the waiting list, with a link to cancel. If this address "
    "was already registered, we send that link to it again.",
}


@router.post(
    "/events/{event_id}/registrations",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="register",
    responses={
        202: {
            "description": "Taken into account; the outcome and the cancellation link go by "
            "e-mail to the address registered (the same reply for an address already "
            "registered)",
            "links": _links("$response.body#/event_id", "get_event", "registrations"),
        },
        404: _ERRORS[404],
        409: {"description": "Conference cancelled or already started"},
        **_GUARD,
    },
)
async def register(event_id: UUID, data: RegistrationIn, store: Store) -> RegistrationReceived:
    """Register: confirmed while seats are left, else waitlisted; a person already registered
    gets their link again by e-mail. The reply never tells which happened."""
    await store.register(str(event_id), data)
    return RegistrationReceived(event_id=str(event_id), message=RECEIVED[data.locale.value])


@router.post(
    "/registrations/{registration_id}/cancel",
    operation_id="cancel_registration",
    responses={
        403: {"description": "Invalid cancellation link"},
        404: _ERRORS[404],
        410: {"description": "The link has expired (conference ended, or registered again since)"},
        **_GUARD,
    },
)
async def cancel_registration(
    registration_id: UUID, data: CancelRequest, store: Store
) -> CancelResult:
    """Cancel with the token of the e-mailed link; the first waitlisted person gets the seat."""
    return await store.cancel_registration(str(registration_id), data.token)
