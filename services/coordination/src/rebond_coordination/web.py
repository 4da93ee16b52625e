"""The console's web plumbing: templates, who is signed in, CSRF, and the error pages.

Every page takes `Signed` (a dependency): no session, no page. `require(capability)` adds the
page-level check (403); row-level checks are the store's, through the scope (404). Every form
that changes something carries the session's CSRF token, compared in constant time before the
route runs (`checked_form`).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import FormData

from rebond_contracts.associations import ASSOCIATION_NAMES, AssociationId
from rebond_contracts.geography import REGIONS, department_label
from rebond_coordination import domain
from rebond_coordination.auth import SessionRules, same, token_hash
from rebond_coordination.observability import Observability
from rebond_coordination.policy import Capability, Scope
from rebond_coordination.ports import EventsClient, Mailer, PreviewClient
from rebond_coordination.relay import Relay
from rebond_coordination.settings import CoordinationSettings
from rebond_coordination.store import SessionRow, Store, UserRow
from rebond_http.clients import ClientAddress
from rebond_http.guard import TokenBucketLimiter
from rebond_sql.types import Clock

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
PARIS = ZoneInfo("Europe/Paris")

MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
    "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip
STAGE_LABELS = {
    "pre_procedure": "Difficultés sans procédure",
    "amicable_procedure": "Mandat ad hoc ou conciliation",
    "safeguard": "Sauvegarde",
    "receivership": "Redressement judiciaire",
    "liquidation_in_progress": "Liquidation en cours",
    "after_liquidation": "Après liquidation ou cession",
    "professional_recovery": "Rétablissement professionnel",
    "unsure": "Ne sait pas",
}
NEED_LABELS = {
    "listening": "Écoute", "urgent_financial_legal": "Urgence trésorerie ou juridique",
    "peer_support": "Échanges entre pairs", "mentoring": "Parrainage", "coaching": "Coaching",
    "salaried_job": "Retrouver un emploi salarié", "new_business": "Créer une nouvelle activité",
    "understand_procedures": "Comprendre les procédures",
}  # fmt: skip


def when(value: datetime | None) -> str:
    """'6 décembre 2026 à 09 h 30', Paris time."""
    if value is None:
        return "—"
    local = value.astimezone(PARIS)
    return f"{local.day} {MONTHS[local.month - 1]} {local.year} à {local.hour:02d} h {local.minute:02d}"


def waited(since: datetime, now: datetime) -> str:
    """'3 h 05' or '2 j 4 h': how long something has waited."""
    minutes = max(0, int((now - since).total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days} j {hours} h" if days else f"{hours} h {minutes:02d}"


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(
    when=when, association=domain.association_name, department=department_label
)
templates.env.globals.update(
    regions=REGIONS, stages=STAGE_LABELS, needs=NEED_LABELS, causes=domain.CAUSE_LABELS,
    declines=domain.DECLINE_LABELS, outcomes=domain.OUTCOME_LABELS, states=domain.STATE_LABELS,
    close_outcomes=domain.CLOSE_LABELS, roles=domain.ROLE_LABELS, Capability=Capability,
    association_names={a.value: name for a, name in ASSOCIATION_NAMES.items()}, waited=waited,
)  # fmt: skip


@dataclass
class Services:
    """What the routes use, built once by `app.build`."""

    settings: CoordinationSettings
    store: Store
    relay: Relay
    mailer: Mailer
    preview: PreviewClient
    events: EventsClient
    clock: Clock
    limiter: TokenBucketLimiter
    #: Who sent a request, for the sign-in limit (`rebond_http.clients`).
    clients: ClientAddress
    sessions: SessionRules
    observability: Observability

    @property
    def cookie(self) -> str:
        """`__Host-` on https: the browser then refuses it unless Secure, host-only, path /."""
        return "__Host-rebond_console" if self.settings.secure_cookies else "rebond_console"


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


Deps = Annotated[Services, Depends(services)]


@dataclass(frozen=True)
class Signed:
    user: UserRow
    session: SessionRow

    @property
    def scope(self) -> Scope:
        return self.user.scope


class NotSignedIn(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class Forbidden(Exception):
    """The person may not use this part of the console (403)."""


class NotFound(Exception):
    """Nothing here for this person: unknown, or outside their scope (404, the same page)."""


class CsrfRefused(Exception):
    pass


async def signed_in(request: Request, deps: Deps) -> Signed:
    """The person behind the session cookie, or `NotSignedIn`. An expired, revoked or unknown
    session, or a deactivated account, is treated as no session at all."""
    token = request.cookies.get(deps.cookie)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not token:
        raise NotSignedIn(path)
    found = await deps.store.session(token_hash(token))
    now = deps.clock()
    if found is None:
        raise NotSignedIn(path)
    session, user = found
    if session.revoked_at is not None or not user.active:
        raise NotSignedIn(path)
    if deps.sessions.expired(session.created_at, session.last_seen_at, now):
        await deps.store.end_session(session.token_hash, None, now)
        raise NotSignedIn(path)
    if deps.sessions.worth_touching(session.last_seen_at, now):
        await deps.store.touch_session(session.token_hash, now)
    return Signed(user, session)


Person = Annotated[Signed, Depends(signed_in)]


def require(capability: Capability) -> Callable[[Signed], Awaitable[Signed]]:
    async def check(signed: Person) -> Signed:
        if not signed.scope.may(capability):
            raise Forbidden()
        return signed

    return check


#: Who may open each area's pages: a route takes the one of its area (a 403 for anyone else).
Coordinator = Annotated[Signed, Depends(require(Capability.QUEUE))]
Member = Annotated[Signed, Depends(require(Capability.INBOX))]
Editor = Annotated[Signed, Depends(require(Capability.DIRECTORY))]
Previewer = Annotated[Signed, Depends(require(Capability.PREVIEW))]
Reader = Annotated[Signed, Depends(require(Capability.STATISTICS))]
Organiser = Annotated[Signed, Depends(require(Capability.CONFERENCES))]
Moderator = Annotated[Signed, Depends(require(Capability.MODERATION))]
Auditor = Annotated[Signed, Depends(require(Capability.AUDIT))]
Manager = Annotated[Signed, Depends(require(Capability.USERS))]


async def checked_form(request: Request, signed: Person) -> FormData:
    """The submitted form, once its CSRF token matched the session's (else `CsrfRefused`)."""
    form = await request.form()
    if not same(str(form.get("csrf", "")), signed.session.csrf_token):
        raise CsrfRefused()
    return form


Form = Annotated[FormData, Depends(checked_form)]


def field(form: FormData, name: str) -> str:
    """A text field, trimmed ('' when absent or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def fits(adapter: TypeAdapter[Any], value: object) -> bool:
    """Whether `value` is what a contract's field takes: checked on the form, so the outbox never
    holds a message its contract would refuse (the relay would be stuck on it)."""
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, *,
    signed: Signed | None = None, status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    deps = services(request)
    values = {
        "signed": signed, "scope": signed.scope if signed else None,
        "csrf": signed.session.csrf_token if signed else "", "now": deps.clock(),
        **(context or {}),
    }  # fmt: skip
    return templates.TemplateResponse(request, template, values, status_code=status_code)


def message(
    request: Request, title: str, text: str, status_code: int, signed: Signed | None = None
) -> HTMLResponse:
    return render(
        request, "message.html", {"title": title, "text": text},
        signed=signed, status_code=status_code,
    )  # fmt: skip


def association_choices() -> list[tuple[str, str]]:
    """Every association of the grouping as (id, name), for a page's association picker. A new
    list each time: the templates prepend their "all" entry to it (`[("", …)] + associations`)."""
    return [(a.value, domain.association_name(a.value)) for a in AssociationId]


def chosen_association(request: Request, signed: Signed) -> str | None:
    """The association a coordinator narrowed a list to (`?association=`); None for anyone
    else, and for an id that is not an association's."""
    wanted = request.query_params.get("association")
    return (
        wanted if signed.scope.coordinator and wanted in {a.value for a in AssociationId} else None
    )


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def to_sign_in(next_path: str) -> Response:
    return see_other("/connexion?suite=" + quote(next_path, safe=""))


def home_of(scope: Scope) -> str:
    for capability, path in (
        (Capability.QUEUE, "/file"), (Capability.INBOX, "/boite"),
        (Capability.CONFERENCES, "/conferences"),
    ):  # fmt: skip
        if scope.may(capability):
            return path
    return "/journal"
