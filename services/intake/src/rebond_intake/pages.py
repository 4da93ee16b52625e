"""The portal's pages for people, rendered on the server so that they work without JavaScript
(`static/portal.js` only adds to them): the questionnaire (`/`), its confirmation, the status
page (`/suivi/{reference}`), the privacy notice (`/confidentialite`) and the erasure form
(`/effacer`).

Like the API's routes they only translate: a posted form becomes the contract's JSON
(`form_input`), is validated by the same model and goes through the same use cases
(`submissions.Submissions`), so a page can accept nothing the API refuses. French first;
`?lang=en` gives English.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from rebond_contracts.associations import AssociationId
from rebond_contracts.contacts import PublicContact, national_resources, public_contact
from rebond_contracts.questionnaire import Need, QuestionnaireV1
from rebond_contracts.topics import erasure_window_days
from rebond_intake import submissions
from rebond_intake.api import IDEMPOTENCY_KEY_PATTERN, Intake
from rebond_intake.errors import localise
from rebond_intake.form_input import FormError, form_errors, questions, to_questionnaire
from rebond_intake.resources import RESOURCES
from rebond_intake.timeline import PARIS, Step

pages = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(str(files("rebond_intake") / "templates")))


def _local_time(at: datetime) -> str:
    """`at` as a person in France reads it: "06/12/2026 21:50" (Europe/Paris)."""
    return at.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")


templates.env.filters["local_time"] = _local_time

#: Statuses after which the status page stops refreshing itself: the decision is known.
PENDING = frozenset({"received"})
#: Steps that name the association currently in charge of the request.
_IN_CHARGE = ("oriented", "reoriented", "offered", "delivered", "accepted", "follow_up_due")


def _lang(request: Request) -> str:
    return "en" if request.query_params.get("lang") == "en" else "fr"


def _render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = _lang(request)

    def tr(fr: str, en: str) -> str:
        return en if lang == "en" else fr

    return templates.TemplateResponse(
        request,
        name,
        {"lang": lang, "tr": tr, "suffix": "?lang=en" if lang == "en" else "", **context},
        status_code=status_code,
    )


def _form(
    request: Request,
    values: dict[str, list[str]] | None = None,
    errors: list[FormError] | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The questionnaire, with the person's `values` kept and `errors` summarised at the top.
    Each rendering carries a fresh idempotency key: posting the same page twice (a double
    click, a reload) sends one questionnaire."""
    return _render(
        request, "portal.html", status_code,
        questions=questions(), values=values or {}, errors=errors or [],
        problem=problem, resources=RESOURCES, key=str(uuid.uuid4()),
    )  # fmt: skip


@pages.get("/", response_class=HTMLResponse)
async def portal(request: Request) -> HTMLResponse:
    return _form(request)


@pages.post("/", response_class=HTMLResponse)
async def submit_form(request: Request, intake: Intake) -> HTMLResponse:
    """The form's answers through the same validation and use case as the JSON API."""
    lang = _lang(request)
    form = await request.form()
    values = {key: [str(v) for v in form.getlist(key)] for key in form}
    try:
        questionnaire = QuestionnaireV1.model_validate(to_questionnaire(form, lang))
    except ValidationError as error:
        located = [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
        return _form(request, values, form_errors(localise(located, lang), lang), status_code=422)
    posted_key = str(form.get("idempotency_key") or "")
    key = posted_key if re.fullmatch(IDEMPOTENCY_KEY_PATTERN, posted_key) else None
    match await intake.submissions.submit(questionnaire, key):
        case submissions.Accepted() as accepted:
            status = await intake.submissions.status(accepted.reference, lang)
            return _render(
                request, "confirmation.html", accepted=accepted,
                no_email=questionnaire.contact is None or questionnaire.contact.email is None,
                status_url=str(request.url_for("status_page", reference=accepted.reference)),
                peer=asks_for_a_peer(questionnaire), stories_url=str(intake.settings.stories_url),
                **_status_context(
                    accepted.reference, status, intake.settings.callback_working_days
                ),
            )  # fmt: skip
        case submissions.KeyReused():  # an older page sent again with other answers
            problem = "resent"
        case submissions.NotText():
            problem = "invalid"
        case submissions.NotAccepted():
            problem = "unavailable"
    code = 503 if problem == "unavailable" else 422
    return _form(request, values, problem=problem, status_code=code)


def asks_for_a_peer(questionnaire: QuestionnaireV1) -> bool:
    """Whether the router will ask the events service for a peer for this person: they asked
    for `peer_support` and agreed to share a contact (as the router's `peer_request_of`)."""
    return (
        Need.PEER_SUPPORT in questionnaire.needs
        and questionnaire.consents.share_with_association
        and questionnaire.contact is not None
    )


@dataclass(frozen=True)
class Orientation:
    """Who has the request now, why, and how to reach them without the portal."""

    status: str
    association: str | None
    reasons: list[str]
    contact: PublicContact | None
    #: What the step in charge says (an acceptance: who will call and by when).
    said: str = ""


def _orientation(steps: list[Step], status: str) -> Orientation:
    in_charge = next(
        (s for s in reversed(steps) if s.code in _IN_CHARGE and s.association_id), None
    )
    # The public view of a person in distress names no association: its steps still say
    # where the request stands ("une association partenaire a accepté…").
    latest = next((s for s in reversed(steps) if s.code in _IN_CHARGE), None)
    why = next((s for s in reversed(steps) if s.code in ("oriented", "reoriented")), None)
    contact = None
    if in_charge is not None and in_charge.association_id in set(AssociationId):
        contact = public_contact(in_charge.association_id)
    return Orientation(
        status,
        in_charge.association_name if in_charge else None,
        list(why.reasons) if why else [],
        contact,
        latest.text if latest else "",
    )


def _status_context(
    reference: str, outcome: submissions.StatusOutcome, days: int
) -> dict[str, Any]:
    """The orientation block's context; `days`: the working days within which the grouping's
    team calls back a person whose request reaches it (as their e-mail says)."""
    if isinstance(outcome, submissions.Timeline):
        return {
            "reference": reference,
            "steps": outcome.steps,
            "orientation": _orientation(outcome.steps, outcome.status),
            "pending": outcome.status in PENDING,
            "callback_days": days,
        }
    return {
        "reference": reference, "steps": [], "orientation": None, "pending": True,
        "callback_days": days,
    }  # fmt: skip


@pages.get("/suivi/{reference}", response_class=HTMLResponse)
async def status_page(request: Request, reference: str, intake: Intake) -> HTMLResponse:
    """The status of a request; refreshes itself (without JavaScript too) while no decision
    is known."""
    lang = _lang(request)
    outcome = await intake.submissions.status(reference, lang)
    match outcome:
        case submissions.UnknownReference():
            return _render(request, "status.html", 404, unknown=True, reference=reference)
        case submissions.NotAccepted():
            return _render(request, "status.html", 503, unavailable=True, reference=reference)
    return _render(
        request, "status.html", stories_url=str(intake.settings.stories_url),
        refresh_s=intake.settings.status_refresh_s,
        **_status_context(reference, outcome, intake.settings.callback_working_days),
    )  # fmt: skip


@pages.get("/confidentialite", response_class=HTMLResponse)
async def privacy(request: Request, intake: Intake) -> HTMLResponse:
    """Art. 13 notice; the durations and the contact come from the settings and the topic
    registry."""
    return _render(
        request, "privacy.html",
        retention_days=intake.settings.retention_days,
        kafka_days=erasure_window_days(),
        national=national_resources(),
        privacy_contact=intake.settings.privacy_contact,
    )  # fmt: skip


@pages.get("/effacer", response_class=HTMLResponse)
async def erase_form(request: Request) -> HTMLResponse:
    return _render(request, "erase.html", values={}, error=None)


@pages.post("/effacer", response_class=HTMLResponse)
async def erase(request: Request, intake: Intake) -> HTMLResponse:
    """The erasure use case from a form. An unknown reference and a wrong secret get the same
    answer, so the form does not tell which references exist."""
    form = await request.form()
    reference = str(form.get("reference") or "").strip().upper()
    secret = str(form.get("secret") or "").strip()
    values = {"reference": reference}
    if not reference or not secret:
        missing = "reference" if not reference else "secret"
        return _render(request, "erase.html", 422, values=values, error=missing)
    match await intake.submissions.erase(reference, secret):
        case submissions.Erased(kafka_copies_gone_within_days=days):
            return _render(request, "erased.html", reference=reference, days=days)
        case submissions.UnknownReference() | submissions.WrongSecret():
            return _render(request, "erase.html", 422, values=values, error="mismatch")
        case submissions.NotAccepted():
            return _render(request, "erase.html", 503, values=values, error="unavailable")
