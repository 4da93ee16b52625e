"""The console's clients of the other services: the events organiser API and the router's
policy preview over HTTP, and SMTP.

Each is one of the ports of `ports.py`, and every failure it cannot turn into an answer is that
port's `…Unavailable` error, so a page says "try again" and nothing is half-done: a conference
form is kept as typed, an invitation can be sent again from the users page. Each holds its own
connection (the `httpx.AsyncClient` is made by `build` and closed at shutdown), never a global.
"""

import ssl
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import aiosmtplib
import httpx
from pydantic import SecretStr, TypeAdapter, ValidationError

from rebond_contracts.preview import PREVIEW_PATH, PreviewProblem
from rebond_coordination.ports import (
    Conference,
    EventsInvalid,
    EventsNotFound,
    EventsUnavailable,
    FieldError,
    MailUnavailable,
    PreviewRejected,
    PreviewResult,
    PreviewUnavailable,
    Registration,
    StoryToModerate,
    VolunteerToModerate,
)
from rebond_coordination.settings import CoordinationSettings

PARIS = ZoneInfo("Europe/Paris")
_conferences: TypeAdapter[list[Conference]] = TypeAdapter(list[Conference])
_registrations: TypeAdapter[list[Registration]] = TypeAdapter(list[Registration])
_errors: TypeAdapter[list[FieldError]] = TypeAdapter(list[FieldError])
_stories: TypeAdapter[list[StoryToModerate]] = TypeAdapter(list[StoryToModerate])
_volunteers: TypeAdapter[list[VolunteerToModerate]] = TypeAdapter(list[VolunteerToModerate])
#: Moderation decisions: a 409 (decided meanwhile by someone else) is as if it were gone.
_MODERATED = ("/v1/stories/", "/v1/peers/volunteers/")
#: The events API's largest page (`per_page`).
_PER_PAGE = 100


class HttpEvents:
    """`ports.EventsClient` on the events service's `/v1` API, with each association's
    organiser key (`X-API-Key`). Its 422 `detail` entries become `FieldError`s (they name the
    field as the form does); 404 is `EventsNotFound`; anything else, or no answer, is
    `EventsUnavailable`."""

    def __init__(self, client: httpx.AsyncClient, keys: dict[str, SecretStr]) -> None:
        self._client = client
        self._keys = keys

    async def _call(
        self, association: str, method: str, path: str, json: dict[str, object] | None = None
    ) -> Any:
        key = self._keys.get(association)
        if key is None:
            raise EventsUnavailable(f"no organiser key for {association}")
        try:
            reply = await self._client.request(
                method, path, json=json, headers={"X-API-Key": key.get_secret_value()}
            )
        except httpx.HTTPError as error:
            raise EventsUnavailable(
                f"events service unreachable ({type(error).__name__})"
            ) from error
        if reply.status_code == 404 or (
            reply.status_code == 409 and method == "POST" and path.startswith(_MODERATED)
        ):
            raise EventsNotFound(path)  # a story or volunteer moderated meanwhile: gone too
        if reply.status_code == 422:
            try:
                raise EventsInvalid(_errors.validate_python(reply.json()["detail"]))
            except (ValueError, KeyError, ValidationError) as error:
                raise EventsUnavailable("events answered 422 without field errors") from error
        if reply.is_error:
            raise EventsUnavailable(f"events service answered {reply.status_code}")
        return reply.json() if reply.content else None

    async def list_events(self, association: str) -> list[Conference]:
        """The association's upcoming conferences: the public list, page by page, kept to
        the ones it organises (the API has no list per organiser)."""
        found: list[Conference] = []
        page = 1
        while True:
            body = await self._call(
                association, "GET", f"/v1/events?page={page}&per_page={_PER_PAGE}"
            )
            found += [c for c in _conferences.validate_python(body["items"])
                      if c.organiser == association]  # fmt: skip
            if page * _PER_PAGE >= body["total"]:
                return found
            page += 1

    async def get_event(self, association: str, event_id: str) -> Conference:
        event = Conference.model_validate(
            await self._call(association, "GET", f"/v1/events/{event_id}")
        )
        if event.organiser != association:
            raise EventsNotFound(event_id)  # another association's: as if it did not exist
        return event

    async def create_event(self, association: str, data: dict[str, object]) -> Conference:
        return Conference.model_validate(
            await self._call(association, "POST", "/v1/events", _json(data))
        )

    async def update_event(
        self, association: str, event_id: str, changes: dict[str, object]
    ) -> Conference:
        return Conference.model_validate(
            await self._call(association, "PATCH", f"/v1/events/{event_id}", _json(changes))
        )

    async def cancel_event(self, association: str, event_id: str) -> Conference:
        return Conference.model_validate(
            await self._call(association, "POST", f"/v1/events/{event_id}/cancel")
        )

    async def registrations(self, association: str, event_id: str) -> list[Registration]:
        return _registrations.validate_python(
            await self._call(association, "GET", f"/v1/events/{event_id}/registrations")
        )

    # --- moderation of the stories and the peer volunteers (issue 24) -----------------------

    async def stories_to_moderate(self, association: str) -> list[StoryToModerate]:
        return _stories.validate_python(
            await self._call(association, "GET", "/v1/moderation/stories?status=pending")
        )

    async def moderate_story(self, association: str, story_id: str, approve: bool) -> None:
        decision = "approve" if approve else "reject"
        await self._call(association, "POST", f"/v1/stories/{story_id}/{decision}")

    async def volunteers_to_moderate(self, association: str) -> list[VolunteerToModerate]:
        """The volunteers reported by a side of a match (first), then the new ones."""
        return [
            volunteer
            for status in ("reported", "pending")
            for volunteer in _volunteers.validate_python(
                await self._call(association, "GET", f"/v1/moderation/volunteers?status={status}")
            )
        ]

    async def moderate_volunteer(self, association: str, volunteer_id: str, approve: bool) -> None:
        decision = "approve" if approve else "reject"
        await self._call(association, "POST", f"/v1/peers/volunteers/{volunteer_id}/{decision}")


class HttpPreview:
    """`ports.PreviewClient` on the router's `POST /internal/preview` (`rebond_contracts.preview`),
    with the bearer token. A 422 is `PreviewRejected` with the association and the field the
    router names; anything else that is not a result (no answer within the client's timeout,
    a 401 from a token that differs, a 5xx, a body that is not the contract's) is
    `PreviewUnavailable`, which the page turns into "try again": nothing is applied either way."""

    def __init__(self, client: httpx.AsyncClient, token: SecretStr) -> None:
        self._client = client
        self._token = token

    async def preview(self, directory_yaml: str) -> PreviewResult:
        try:
            reply = await self._client.post(
                PREVIEW_PATH,
                content=directory_yaml.encode(),
                headers={
                    "Authorization": f"Bearer {self._token.get_secret_value()}",
                    "Content-Type": "application/yaml; charset=utf-8",
                },
            )
        except httpx.HTTPError as error:
            raise PreviewUnavailable(f"router unreachable ({type(error).__name__})") from error
        try:
            if reply.status_code == 422:
                problem = PreviewProblem.model_validate_json(reply.content)
                raise PreviewRejected(problem.message, problem.association, problem.field)
            if reply.status_code == 200:
                return PreviewResult.model_validate_json(reply.content)
        except ValidationError as error:
            raise PreviewUnavailable(
                f"router answered {reply.status_code} outside the contract"
            ) from error
        raise PreviewUnavailable(f"router answered {reply.status_code}")


def _json(data: dict[str, object]) -> dict[str, object]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}


class SmtpMailer:
    """`ports.Mailer` over SMTP: one connection per invitation (a few a day), STARTTLS or TLS as
    configured (production requires one), `MailUnavailable` on any refusal or silence."""

    def __init__(self, settings: CoordinationSettings) -> None:
        self._settings = settings

    async def send_invitation(
        self, *, to: str, name: str, link: str, invited_by: str, expires_at: datetime
    ) -> None:
        s = self._settings
        until = expires_at.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")
        mail = EmailMessage()
        mail["From"] = s.mail_from
        mail["To"] = to
        mail["Subject"] = "Votre accès à la console Rebond / Your Rebond console access"
        mail.set_content(
            f"Bonjour {name},\n\n{invited_by} vous invite à rejoindre la console de coordination "
            f"de Rebond. Choisissez votre mot de passe avec ce lien, valable jusqu'au {until} "
            f"(heure de Paris) et utilisable une seule fois :\n\n{link}\n\n"
            "Si vous n'attendiez pas cette invitation, ignorez simplement ce message.\n\n"
            f"---\n\nHello {name},\n\n{invited_by} invites you to Rebond's coordination console. "
            f"Choose your password with this one-time link, valid until {until} (Paris time):"
            f"\n\n{link}\n\nIf you did not expect this invitation, simply ignore this message.\n"
        )
        tls = ssl.create_default_context(cafile=s.smtp_ca_file) if s.smtp_ca_file else None
        try:
            await aiosmtplib.send(
                mail, hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                start_tls=s.smtp_starttls, use_tls=s.smtp_tls, tls_context=tls,
                timeout=s.smtp_timeout_s,
            )  # fmt: skip
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise MailUnavailable(
                f"SMTP refused or unreachable ({type(error).__name__})"
            ) from error
