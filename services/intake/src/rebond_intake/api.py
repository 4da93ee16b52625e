"""HTTP routes. They only translate: parse the contract, call a plain function, reply."""

import hashlib
import hmac
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from rebond_contracts.payloads import (
    REFERENCE_PATTERN,
    ErasureRequestedV1,
    QuestionnaireCompletedV1,
)
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE, Distress, QuestionnaireV1
from rebond_contracts.topics import ERASURES, QUESTIONNAIRES
from rebond_intake.errors import localise, request_locale
from rebond_intake.publisher import BrokerUnavailable, SubmissionPublisher
from rebond_intake.questionnaire_form import questionnaire_form
from rebond_intake.references import new_reference
from rebond_intake.resources import RESOURCES, Resource
from rebond_intake.settings import IntakeSettings
from rebond_intake.store import StatusStore, StoreUnavailable, Submission
from rebond_intake.timeline import Record, build_timeline, current_status

log = structlog.get_logger(__name__)
router = APIRouter()

#: Event ids of submissions sent with an Idempotency-Key are derived from the key.
IDEMPOTENCY_NAMESPACE = uuid.UUID("9b0f3c55-2b43-4a55-9f0e-3f4f4a2b6c11")
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{8,128}$"
#: Erasure event ids derive from the reference: asking twice publishes the same event.
ERASURE_NAMESPACE = uuid.UUID("5a4f2e0c-7d7b-4c55-9c1e-2b6f0f8f3e71")


def secret_digest(secret: str) -> str:
    """What the store keeps of an erasure secret (a 256-bit random token: a plain hash is enough)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# The dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in its
# thread pool, three thread hops per request for what is an attribute read.
async def get_publisher(request: Request) -> SubmissionPublisher:
    publisher: SubmissionPublisher = request.app.state.publisher
    return publisher


async def get_settings(request: Request) -> IntakeSettings:
    settings: IntakeSettings = request.app.state.settings
    return settings


async def get_store(request: Request) -> StatusStore:
    store: StatusStore = request.app.state.store
    return store


Publisher = Annotated[SubmissionPublisher, Depends(get_publisher)]
Settings = Annotated[IntakeSettings, Depends(get_settings)]
Store = Annotated[StatusStore, Depends(get_store)]


class Accepted(BaseModel):
    reference: str
    status_url: str
    message: str
    #: Present when the person answered `distress: yes`: whom to call, right now.
    resources: list[Resource] | None = None
    #: Shown once: with the reference, it lets the person withdraw and have their data erased
    #: (`POST /v1/submissions/{reference}/erasure`). Only its hash is kept; a replay of the same
    #: Idempotency-Key gets a new one (the previous one stops working).
    erasure_secret: str | None = None
    erasure_url: str | None = None


class ErasureRequest(BaseModel):
    model_config = {"extra": "forbid"}

    secret: str | None = None


class ErasureAccepted(BaseModel):
    reference: str
    status: str
    message: str


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
    responses={
        202: {"content": {"application/json": {"example": _EXAMPLE_ACCEPTED}}},
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
    request: Request,
    publisher: Publisher,
    settings: Settings,
    store: Store,
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

    One store transaction before the publish keeps the submission and the hash of its erasure
    secret (the person can erase with the secret as soon as they get it). The `acknowledged`
    flag says the reference may be shown (status page) and, for a key, that a retry must not
    publish again. Without a key it is written at once, with the claim: that reference is shown
    to nobody before the 202, which comes only after Kafka's acknowledgement, and when Kafka
    fails the claim is released, so the flag is never seen true for an event Kafka lacks. With
    a key the flag is written only after Kafka's acknowledgement, and awaited: a retry of the
    same key may come at any time and must publish again until then.
    """
    locale = questionnaire.locale.value
    try:
        canonical = questionnaire.model_dump_json().encode("utf-8")
    except (ValueError, UnicodeError):
        return _invalid(locale, [{"loc": ("body",), "type": "invalid_characters"}])
    received_at = datetime.now(UTC)
    erasure_secret = secrets.token_urlsafe(32)
    if idempotency_key is None:
        wanted = Submission(new_reference(), received_at, str(uuid.uuid4()), None, None, True)
    else:
        event_id = str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, idempotency_key))
        body_hash = hashlib.sha256(canonical).hexdigest()
        wanted = Submission(
            new_reference(), received_at, event_id, idempotency_key, body_hash, False
        )
    try:
        claimed = await store.claim(wanted, secret_digest(erasure_secret))
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
    reference = claimed.reference
    replay = reference != wanted.reference
    with structlog.contextvars.bound_contextvars(reference=reference, event_id=claimed.event_id):
        if replay:  # the secret given now replaces the one given before
            try:
                await store.set_secret(reference, secret_digest(erasure_secret), received_at)
            except StoreUnavailable as error:
                log.warning("submission_not_accepted", reason=f"store: {error}")
                return _unavailable(settings)
        if replay and claimed.acknowledged:
            log.info("submission_replayed")
        else:
            event = QUESTIONNAIRES.envelope(
                QuestionnaireCompletedV1(
                    reference=reference,
                    received_at=claimed.received_at,
                    questionnaire=questionnaire,
                ),
                subject=reference,
                correlationid=reference,
                id=claimed.event_id,
            ).model_copy(update={"time": claimed.received_at})
            try:
                await publisher.publish(event)
            except BrokerUnavailable as error:
                log.warning("submission_not_accepted", reason=str(error))
                if idempotency_key is None:
                    await _release(store, reference)
                return _unavailable(settings)
            if not claimed.acknowledged:
                try:
                    await store.acknowledge(reference)
                except StoreUnavailable as error:
                    log.warning("submission_not_accepted", reason=str(error))
                    return _unavailable(settings)
            log.info("submission_accepted")
    distressed = questionnaire.distress == Distress.YES
    return Accepted(
        reference=reference,
        status_url=f"/v1/submissions/{reference}",
        message="Merci. Votre questionnaire est bien enregistré."
        if locale == "fr"
        else "Thank you. Your questionnaire is safely recorded.",
        resources=RESOURCES if distressed else None,
        erasure_secret=erasure_secret,
        erasure_url=f"/v1/submissions/{reference}/erasure",
    )


async def _release(store: StatusStore, reference: str) -> None:
    """Forget a keyless claim Kafka did not take. Should the store fail too, the row stays,
    unreachable: its reference and secret were never shown to anyone."""
    try:
        await store.release(reference)
    except StoreUnavailable as error:
        log.warning("claim_not_released", reason=str(error))


@router.post(
    "/v1/submissions/{reference}/erasure",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ErasureAccepted,
    summary="Withdraw consent and erase the person's data",
    responses={
        403: {"model": Problem, "description": "Wrong erasure secret"},
        404: {"model": Problem, "description": "Unknown reference"},
        503: {"model": Unavailable, "description": "Kafka or the store unreachable: retry"},
    },
)
async def request_erasure(
    reference: str,
    publisher: Publisher,
    settings: Settings,
    store: Store,
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
    not_found = JSONResponse(
        status_code=404,
        content=Problem(error="not_found", message="Référence inconnue.").model_dump(),
    )
    if not re.fullmatch(REFERENCE_PATTERN, reference):
        return not_found
    given = x_erasure_secret or (body.secret if body is not None else None) or ""
    try:
        kept = await store.secret_hash(reference)
    except StoreUnavailable:
        return _unavailable(settings)
    if kept is None:
        return not_found
    if not hmac.compare_digest(kept, secret_digest(given)):
        log.warning("erasure_refused", reference=reference, reason="wrong secret")
        return JSONResponse(
            status_code=403,
            content=Problem(
                error="forbidden", message="Ce code secret ne correspond pas à cette référence."
            ).model_dump(),
        )
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
            await store.add(Record(event_id, reference, "erasure", now, {}))
        except (BrokerUnavailable, StoreUnavailable) as error:
            log.warning("erasure_not_accepted", reason=str(error))
            return _unavailable(settings)
        log.info("erasure_requested")
    return ErasureAccepted(
        reference=reference,
        status="erased",
        message="Votre consentement est retiré : vos données sont en cours d'effacement dans "
        "chaque service et l'association qui suivait votre demande en est informée.",
    )


@router.get("/v1/questionnaire", summary="The questions, options and labels (fr, en)")
async def get_questionnaire() -> dict[str, Any]:
    """Everything a portal needs to render the form; the distress question comes first."""
    return questionnaire_form()


@router.get(
    "/v1/submissions/{reference}",
    response_model=SubmissionStatus,
    summary="A person's status timeline",
    responses={
        404: {"model": Problem, "description": "Unknown reference"},
        503: {"model": Unavailable, "description": "Status store unreachable"},
    },
)
async def get_status(
    reference: str,
    settings: Settings,
    store: Store,
    locale: str | None = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> object:
    """Received, oriented to whom and why, accepted / declined / re-oriented, closed."""
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
        submission = await store.submission(reference)
        records = await store.records(reference)
    except StoreUnavailable:
        return _unavailable(settings)
    known = submission is not None and submission.acknowledged
    if not known and not records:
        return not_found
    steps = build_timeline(submission.received_at if known and submission else None, records, lang)
    return SubmissionStatus(
        reference=reference,
        status=current_status(steps),
        refresh_after_s=settings.status_refresh_s,
        timeline=[TimelineStep(**step.__dict__) for step in steps],
    )


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz", include_in_schema=False)
async def readyz(publisher: Publisher, request: Request) -> JSONResponse:
    kafka = publisher.ready()
    store = bool(getattr(request.app.state, "store_ready", False))
    return JSONResponse(
        status_code=200 if kafka and store else 503,
        content={
            "kafka": "connected" if kafka else "unreachable",
            "store": "ready" if store else "unreachable",
        },
    )
