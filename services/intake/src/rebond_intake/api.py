"""HTTP routes. They only translate: parse the request, call a use case
(`rebond_intake.submissions`), and turn its outcome into a reply."""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE, QuestionnaireV1
from rebond_intake import submissions
from rebond_intake.errors import localise, request_locale
from rebond_intake.questionnaire_form import questionnaire_form
from rebond_intake.resources import Resource
from rebond_intake.settings import IntakeSettings
from rebond_intake.submissions import Submissions

router = APIRouter()

IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{8,128}$"


@dataclass(frozen=True)
class Adapters:
    """What the routes work with, as the composition root (`app.build`) put it on
    `app.state.intake`."""

    submissions: Submissions
    settings: IntakeSettings


# One dependency rather than one per adapter: FastAPI solves each dependency on every request
# (its own parameters, its cache key). `async def` on purpose: FastAPI runs a plain `def`
# dependency in its thread pool.
async def get_adapters(request: Request) -> Adapters:
    adapters: Adapters = request.app.state.intake
    return adapters


Intake = Annotated[Adapters, Depends(get_adapters)]


async def json_only(request: Request) -> None:
    """The API takes JSON only (415 otherwise): the edge lets forms through for the portal's
    own pages (`pages.py`), not for the API."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "Envoyez les réponses en JSON. (Send the answers as JSON.)",
        )


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
    dependencies=[Depends(json_only)],
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
    """Accept a questionnaire; the reference is returned only once Kafka has it durably
    (`submissions.Submissions.submit`)."""
    locale = questionnaire.locale.value
    match await intake.submissions.submit(questionnaire, idempotency_key):
        case submissions.Accepted() as accepted:
            return _accepted_reply(accepted, locale)
        case submissions.KeyReused():
            return JSONResponse(
                status_code=status.HTTP_409_CONFLICT,
                content=Problem(
                    error="idempotency_key_reused",
                    message="Cette clé d'idempotence a déjà servi pour un autre questionnaire."
                    if locale == "fr"
                    else "This idempotency key was already used for another questionnaire.",
                ).model_dump(),
            )
        case submissions.NotText():
            return _invalid(locale, [{"loc": ("body",), "type": "invalid_characters"}])
        case submissions.NotAccepted():
            return _unavailable(intake.settings)


def _accepted_reply(accepted: submissions.Accepted, locale: str) -> Response:
    reference = accepted.reference
    reply = Accepted(
        reference=reference,
        status_url=f"/v1/submissions/{reference}",
        message="Merci. Votre questionnaire est bien enregistré."
        if locale == "fr"
        else "Thank you. Your questionnaire is safely recorded.",
        resources=accepted.resources,
        erasure_secret=accepted.erasure_secret,
        erasure_url=f"/v1/submissions/{reference}/erasure",
    )
    # Serialised here rather than by FastAPI, which would validate the model it was given again.
    return Response(
        reply.model_dump_json(), status.HTTP_202_ACCEPTED, media_type="application/json"
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
    about `reference`, and the association holding the referral is told
    (`submissions.Submissions.erase`)."""
    given = x_erasure_secret or (body.secret if body is not None else None) or ""
    match await intake.submissions.erase(reference, given):
        case submissions.Erased(kafka_copies_gone_within_days=days):
            return ErasureAccepted(
                reference=reference,
                status="erased",
                message="Votre consentement est retiré : vos données sont en cours "
                "d'effacement dans chaque service et l'association qui suivait votre demande en "
                "est informée. Les copies passées par notre messagerie interne (Kafka) "
                f"s'effacent d'elles-mêmes, au plus tard dans {days} jours.",
                message_en="Your consent is withdrawn: your data is being erased from every "
                "service and the association following your request is told. The copies that "
                f"went through our internal messaging (Kafka) delete themselves within {days} "
                "days at most.",
                kafka_copies_gone_within_days=days,
            )
        case submissions.UnknownReference():
            return _not_found("fr")
        case submissions.WrongSecret():
            return _wrong_secret()
        case submissions.NotAccepted():
            return _unavailable(intake.settings)


def _not_found(locale: str) -> JSONResponse:
    return JSONResponse(
        status_code=404,
        content=Problem(
            error="not_found",
            message="Référence inconnue." if locale == "fr" else "Unknown reference.",
        ).model_dump(),
    )


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
    erased, only received and erased. The reference alone opens the public view; the erasure
    secret the full one (`submissions.Submissions.status`)."""
    lang = request_locale({"locale": locale}, accept_language)
    match await intake.submissions.status(reference, lang, x_erasure_secret):
        case submissions.Timeline() as timeline:
            return SubmissionStatus(
                reference=reference,
                status=timeline.status,
                refresh_after_s=intake.settings.status_refresh_s,
                timeline=[TimelineStep(**step.__dict__) for step in timeline.steps],
                full_view=timeline.full_view,
            )
        case submissions.UnknownReference():
            return _not_found(lang)
        case submissions.WrongSecret():
            return _wrong_secret()
        case submissions.NotAccepted():
            return _unavailable(intake.settings)
