"""HTTP routes. They only translate: parse the contract, call a plain function, reply."""

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from rebond_contracts.payloads import (
    REFERENCE_PATTERN,
    ErasureRequestedV1,
    QuestionnaireCompletedV1,
)
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE, Distress, QuestionnaireV1
from rebond_contracts.topics import ERASURES, QUESTIONNAIRES, erasure_window_days
from rebond_intake.erasure import erasure_secret, matches, matches_stored
from rebond_intake.errors import localise, request_locale
from rebond_intake.publisher import BrokerUnavailable, SubmissionPublisher
from rebond_intake.questionnaire_form import questionnaire_form
from rebond_intake.recent import RecentlyReceived
from rebond_intake.references import new_reference
from rebond_intake.resources import RESOURCES, Resource
from rebond_intake.settings import IntakeSettings
from rebond_intake.store import StatusStore, StoreUnavailable, Submission
from rebond_intake.timeline import build_timeline, current_status, received

log = structlog.get_logger(__name__)
router = APIRouter()

#: Event ids of submissions sent with an Idempotency-Key are derived from the key.
IDEMPOTENCY_NAMESPACE = uuid.UUID("9b0f3c55-2b43-4a55-9f0e-3f4f4a2b6c11")
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{8,128}$"
#: Erasure event ids derive from the reference: asking twice publishes the same event.
ERASURE_NAMESPACE = uuid.UUID("5a4f2e0c-7d7b-4c55-9c1e-2b6f0f8f3e71")


@dataclass(frozen=True)
class Adapters:
    """What the routes work with, as the composition root (`app.py`) put it on `app.state`."""

    publisher: SubmissionPublisher
    settings: IntakeSettings
    store: StatusStore
    recent: RecentlyReceived


# One dependency rather than one per adapter: FastAPI solves each dependency on every request
# (its own parameters, its cache key). `async def` on purpose: FastAPI runs a plain `def`
# dependency in its thread pool.
async def get_adapters(request: Request) -> Adapters:
    state = request.app.state
    return Adapters(state.publisher, state.settings, state.store, state.recent)


Intake = Annotated[Adapters, Depends(get_adapters)]


class Accepted(BaseModel):
    reference: str
    status_url: str
    message: str
    #: Present when the person answered `distress: yes`: whom to call, right now.
    resources: list[Resource] | None = None
    #: With the reference, it lets the person withdraw and have their data erased
    #: (`POST /v1/submissions/{reference}/erasure`). Derived from the reference under intake's
    #: key, never stored: a replay of the same Idempotency-Key gets the same one again.
    erasure_secret: str | None = None
    erasure_url: str | None = None


class ErasureRequest(BaseModel):
    model_config = {"extra": "forbid"}

    secret: str | None = None


class ErasureAccepted(BaseModel):
    reference: str
    status: str
    message: str
    #: The same in English.
    message_en: str
    #: Within how many days the copies that travelled through Kafka are gone too: the longest
    #: retention of a topic with personal data, with its last segment (`erasure_window_days`).
    kafka_copies_gone_within_days: int


class Problem(BaseModel):
    error: str
    message: str


class Unavailable(Problem):
    retry_after_s: int


class FieldError(BaseModel):
    loc: list[str | int]
    path: str
    type: str
    msg: str


class ValidationProblem(BaseModel):
    error: str = "invalid"
    locale: str
    detail: list[FieldError]


class TimelineStep(BaseModel):
    code: str
    at: datetime
    text: str
    association_id: str | None = None
    association_name: str | None = None
    reasons: list[str] = []


class SubmissionStatus(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "reference": "RB-7K3M-Q9XA-2DFE-W8NB",
                    "status": "accepted",
                    "refresh_after_s": 30,
                    "timeline": [
                        {
                            "code": "received",
                            "at": "2026-03-01T09:00:00Z",
                            "text": "Questionnaire reçu.",
                            "reasons": [],
                        },
                        {
                            "code": "oriented",
                            "at": "2026-03-01T09:00:02Z",
                            "text": "Orientation proposée : 60 000 rebonds.",
                            "association_id": "60000-rebonds",
                            "association_name": "60 000 rebonds",
                            "reasons": ["Vous êtes après une liquidation et cherchez un parrain."],
                        },
                        {
                            "code": "accepted",
                            "at": "2026-03-02T10:00:00Z",
                            "text": "60 000 rebonds a accepté votre demande et va vous contacter.",
                            "association_id": "60000-rebonds",
                            "association_name": "60 000 rebonds",
                            "reasons": [],
                        },
                    ],
                }
            ]
        }
    }

    reference: str
    status: str
    refresh_after_s: int
    timeline: list[TimelineStep]
    #: True when the erasure secret came with the request: the associations are named and every
    #: reason is given, those that say the person is in distress included. Without it (the
    #: reference alone), a person who said they are in distress sees the steps only.
    full_view: bool = False


_EXAMPLE_ACCEPTED = {
    "reference": "RB-7K3M-Q9XA-2DFE-W8NB",
    "status_url": "/v1/submissions/RB-7K3M-Q9XA-2DFE-W8NB",
    "message": "Merci. Votre questionnaire est bien enregistré.",
    "resources": None,
}
_EXAMPLE_422 = {
    "error": "invalid",
    "locale": "fr",
    "detail": [
        {
            "loc": ["body", "situation", "department"],
            "path": "situation.department",
            "type": "department_region_mismatch",
            "msg": "Ce département n'appartient pas à la région choisie.",
        }
    ],
}


def _unavailable(settings: IntakeSettings) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(settings.retry_after_s)},
        content=Unavailable(
            error="unavailable",
            message="Le service est momentanément indisponible : votre questionnaire "
            "n'a pas été enregistré. Merci de réessayer dans quelques instants.",
            retry_after_s=settings.retry_after_s,
        ).model_dump(),
    )


def _invalid(locale: str, errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(
        status_code=422,
        content={"error": "invalid", "locale": locale, "detail": localise(errors, locale)},
    )


@router.post(
    "/v1/submissions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    summary="Send the questionnaire",
    operation_id="submit",
    responses={
        202: {
            "content": {"application/json": {"example": _EXAMPLE_ACCEPTED}},
            "links": {
                "get_status": {
                    "operationId": "get_status",
                    "parameters": {"reference": "$response.body#/reference"},
                },
                "request_erasure": {
                    "operationId": "request_erasure",
                    "parameters": {
                        "reference": "$response.body#/reference",
                        "header.X-Erasure-Secret": "$response.body#/erasure_secret",
                    },
                },
            },
        },
        409: {"model": Problem, "description": "Idempotency-Key reused with another body"},
        413: {"model": Problem, "description": "Body over the size limit"},
        415: {"model": Problem, "description": "Not JSON"},
        422: {
            "model": ValidationProblem,
            "description": "One entry per faulty field, in the request's language",
            "content": {"application/json": {"example": _EXAMPLE_422}},
        },
        429: {"model": Unavailable, "description": "Too many submissions from this client"},
        503: {"model": Unavailable, "description": "Kafka unreachable: nothing was accepted"},
    },
    openapi_extra={
        "requestBody": {"content": {"application/json": {"example": EXAMPLE_QUESTIONNAIRE}}}
    },
)
async def submit(
    questionnaire: QuestionnaireV1,
    intake: Intake,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="A unique key per questionnaire (a UUID): a retry with the same key "
            "and body returns the same reference and sends nothing twice.",
        ),
    ] = None,
) -> object:
    """Accept a questionnaire; the reference is returned only once Kafka has it durably.

    Without a key nothing is written before the publish: the reference is new and random (80
    bits), its erasure secret is derived from it (`rebond_intake.erasure`), and the status
    store learns of it from Kafka (the consumer reads `questionnaires.completed` back). With a
    key, one insert first claims the key, so that a retry, or the same key sent twice at once,
    gets the same reference and event id; when Kafka fails the claim stays and the retry
    publishes again. A retry after a success publishes nothing once intake has read the event
    back (or this replica accepted it); before that, on another replica, it publishes the same
    event again (same id, same reference), which every reader takes once.
    """
    publisher, settings, store, recent = (
        intake.publisher,
        intake.settings,
        intake.store,
        intake.recent,
    )
    locale = questionnaire.locale.value
    try:
        canonical = questionnaire.model_dump_json().encode("utf-8")
    except (ValueError, UnicodeError):
        return _invalid(locale, [{"loc": ("body",), "type": "invalid_characters"}])
    received_at = datetime.now(UTC)
    reference, event_id = new_reference(), str(uuid.uuid4())
    claimed_before = False
    if idempotency_key is not None:
        wanted = Submission(
            reference,
            received_at,
            str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, idempotency_key)),
            idempotency_key,
            hashlib.sha256(canonical).hexdigest(),
        )
        try:
            claimed = await store.claim(wanted)
        except StoreUnavailable as error:
            log.warning("submission_not_accepted", reason=f"store: {error}")
            return _unavailable(settings)
        if claimed.body_hash != wanted.body_hash:
            return JSONResponse(
                status_code=status.HTTP_409_CONFLICT,
                content=Problem(
                    error="idempotency_key_reused",
                    message="Cette clé d'idempotence a déjà servi pour un autre questionnaire."
                    if locale == "fr"
                    else "This idempotency key was already used for another questionnaire.",
                ).model_dump(),
            )
        claimed_before = claimed.reference != reference
        reference, event_id, received_at = claimed.reference, claimed.event_id, claimed.received_at
    with structlog.contextvars.bound_contextvars(reference=reference, event_id=event_id):
        try:
            replayed = claimed_before and await _accepted(reference, event_id, store, recent)
        except StoreUnavailable as error:
            log.warning("submission_not_accepted", reason=f"store: {error}")
            return _unavailable(settings)
        if replayed:
            log.info("submission_replayed")
            return _accepted_reply(reference, questionnaire, settings)
        event = QUESTIONNAIRES.envelope(
            QuestionnaireCompletedV1(
                reference=reference, received_at=received_at, questionnaire=questionnaire
            ),
            subject=reference,
            correlationid=reference,
            id=event_id,
        ).model_copy(update={"time": received_at})
        try:
            await publisher.publish(event)
        except BrokerUnavailable as error:
            log.warning("submission_not_accepted", reason=str(error))
            return _unavailable(settings)
        recent.note(received(event_id, reference, received_at))
        log.info("submission_accepted")
    return _accepted_reply(reference, questionnaire, settings)


def _accepted_reply(
    reference: str, questionnaire: QuestionnaireV1, settings: IntakeSettings
) -> Response:
    locale = questionnaire.locale.value
    distressed = questionnaire.distress == Distress.YES
    accepted = Accepted(
        reference=reference,
        status_url=f"/v1/submissions/{reference}",
        message="Merci. Votre questionnaire est bien enregistré."
        if locale == "fr"
        else "Thank you. Your questionnaire is safely recorded.",
        resources=RESOURCES if distressed else None,
        erasure_secret=erasure_secret(settings.erasure_key.get_secret_value(), reference),
        erasure_url=f"/v1/submissions/{reference}/erasure",
    )
    # Serialised here rather than by FastAPI, which would validate the model it was given again.
    return Response(
        accepted.model_dump_json(), status.HTTP_202_ACCEPTED, media_type="application/json"
    )


@router.post(
    "/v1/submissions/{reference}/erasure",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ErasureAccepted,
    summary="Withdraw consent and erase the person's data",
    operation_id="request_erasure",
    responses={
        202: {
            "description": "Accepted: every service erases what it holds",
            "links": {
                "get_status": {
                    "operationId": "get_status",
                    "parameters": {"reference": "$response.body#/reference"},
                }
            },
        },
        403: {"model": Problem, "description": "Wrong erasure secret"},
        404: {"model": Problem, "description": "Unknown reference"},
        503: {"model": Unavailable, "description": "Kafka or the store unreachable: retry"},
    },
)
async def request_erasure(
    reference: str,
    intake: Intake,
    body: ErasureRequest | None = None,
    x_erasure_secret: Annotated[
        str | None,
        Header(
            alias="X-Erasure-Secret",
            description="The secret shown once with the reference (or `secret` in the body).",
        ),
    ] = None,
) -> object:
    """With the secret shown at submission, every service erases or anonymises what it holds
    about `reference`, and the association holding the referral is told."""
    publisher, settings, store, recent = (
        intake.publisher,
        intake.settings,
        intake.store,
        intake.recent,
    )
    not_found = JSONResponse(
        status_code=404,
        content=Problem(error="not_found", message="Référence inconnue.").model_dump(),
    )
    if not re.fullmatch(REFERENCE_PATTERN, reference):
        return not_found
    given = x_erasure_secret or (body.secret if body is not None else None) or ""
    try:
        allowed = await _holds_secret(reference, given, settings, store)
        if not allowed and not await _known(reference, store, recent):
            return not_found
    except StoreUnavailable:
        return _unavailable(settings)
    if not allowed:
        log.warning("erasure_refused", reference=reference, reason="wrong secret")
        return _wrong_secret()
    now = datetime.now(UTC)
    event_id = str(uuid.uuid5(ERASURE_NAMESPACE, reference))
    event = ERASURES.envelope(
        ErasureRequestedV1(reference=reference, requested_at=now),
        subject=reference,
        correlationid=reference,
        id=event_id,
    )
    with structlog.contextvars.bound_contextvars(reference=reference, event_id=event_id):
        try:
            await publisher.publish_erasure(event)
            just_received = recent.get(reference)
            await store.erase(reference, now, just_received.at if just_received else None)
        except (BrokerUnavailable, StoreUnavailable) as error:
            log.warning("erasure_not_accepted", reason=str(error))
            return _unavailable(settings)
        log.info("erasure_requested")
    days = erasure_window_days()
    return ErasureAccepted(
        reference=reference,
        status="erased",
        message="Votre consentement est retiré : vos données sont en cours d'effacement dans "
        "chaque service et l'association qui suivait votre demande en est informée. Les copies "
        "passées par notre messagerie interne (Kafka) s'effacent d'elles-mêmes, au plus tard "
        f"dans {days} jours.",
        message_en="Your consent is withdrawn: your data is being erased from every service "
        "and the association following your request is told. The copies that went through our "
        f"internal messaging (Kafka) delete themselves within {days} days at most.",
        kafka_copies_gone_within_days=days,
    )


async def _accepted(
    reference: str, event_id: str, store: StatusStore, recent: RecentlyReceived
) -> bool:
    """Whether the submission's event is known to be in Kafka (read back, or sent from here)."""
    if recent.get(reference) is not None:
        return True
    return any(r.event_id == event_id for r in await store.records(reference))


async def _known(reference: str, store: StatusStore, recent: RecentlyReceived) -> bool:
    """Whether intake accepted `reference` (its status store, this replica's memory, or the
    hash of an older submission's random erasure secret)."""
    return (
        recent.get(reference) is not None
        or bool(await store.records(reference))
        or await store.secret_hash(reference) is not None
    )


async def _holds_secret(
    reference: str, given: str, settings: IntakeSettings, store: StatusStore
) -> bool:
    """Whether `given` is the erasure secret of `reference`: derived from it under intake's key,
    or, for a submission older than that, the random one whose hash the store kept."""
    if matches(settings.erasure_key.get_secret_value(), reference, given):
        return True
    kept = await store.secret_hash(reference)
    return kept is not None and matches_stored(kept, given)


def _wrong_secret() -> JSONResponse:
    return JSONResponse(
        status_code=403,
        content=Problem(
            error="forbidden", message="Ce code secret ne correspond pas à cette référence."
        ).model_dump(),
    )


@router.get(
    "/v1/questionnaire",
    summary="The questions, options and labels (fr, en)",
    operation_id="get_questionnaire",
)
async def get_questionnaire() -> dict[str, Any]:
    """Everything a portal needs to render the form; the distress question comes first."""
    return questionnaire_form()


@router.get(
    "/v1/submissions/{reference}",
    response_model=SubmissionStatus,
    summary="A person's status timeline",
    operation_id="get_status",
    responses={
        403: {"model": Problem, "description": "Wrong erasure secret (`X-Erasure-Secret`)"},
        404: {"model": Problem, "description": "Unknown reference"},
        503: {"model": Unavailable, "description": "Status store unreachable"},
    },
)
async def get_status(
    reference: str,
    intake: Intake,
    locale: str | None = None,
    accept_language: Annotated[str | None, Header()] = None,
    x_erasure_secret: Annotated[
        str | None,
        Header(
            alias="X-Erasure-Secret",
            description="The secret shown once with the reference: the full view, with every "
            "association named and every reason.",
        ),
    ] = None,
) -> object:
    """Received, oriented to whom and why, accepted / declined / re-oriented, closed; once
    erased, only received and erased.

    The reference alone travels in URLs, e-mail subjects and logs, so it opens only the public
    view: for a person who said they are in distress it names no association and gives no
    reason (`timeline.build_timeline`). The erasure secret opens the full view."""
    settings, store, recent = intake.settings, intake.store, intake.recent
    lang = request_locale({"locale": locale}, accept_language)
    not_found = JSONResponse(
        status_code=404,
        content=Problem(
            error="not_found",
            message="Référence inconnue." if lang == "fr" else "Unknown reference.",
        ).model_dump(),
    )
    if not re.fullmatch(REFERENCE_PATTERN, reference):
        return not_found
    try:
        full = x_erasure_secret is not None and await _holds_secret(
            reference, x_erasure_secret, settings, store
        )
        records = await store.records(reference)
    except StoreUnavailable:
        return _unavailable(settings)
    if x_erasure_secret is not None and not full:
        return _wrong_secret()
    if (just_received := recent.get(reference)) is not None:
        records.append(just_received)
    if not records:
        return not_found
    steps = build_timeline(records, lang, private=full)
    return SubmissionStatus(
        reference=reference,
        status=current_status(steps),
        refresh_after_s=settings.status_refresh_s,
        timeline=[TimelineStep(**step.__dict__) for step in steps],
        full_view=full,
    )


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz", include_in_schema=False)
async def readyz(intake: Intake, request: Request) -> JSONResponse:
    kafka = intake.publisher.ready()
    store = bool(getattr(request.app.state, "store_ready", False))
    return JSONResponse(
        status_code=200 if kafka and store else 503,
        content={
            "kafka": "connected" if kafka else "unreachable",
            "store": "ready" if store else "unreachable",
        },
    )
