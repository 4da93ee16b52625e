"""HTTP routes. They only translate: parse the contract, call a plain function, reply."""

from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from rebond_contracts.payloads import QuestionnaireCompletedV1
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE, QuestionnaireV1
from rebond_contracts.topics import QUESTIONNAIRES
from rebond_intake.publisher import BrokerUnavailable, SubmissionPublisher
from rebond_intake.references import new_reference
from rebond_intake.settings import IntakeSettings

log = structlog.get_logger(__name__)
router = APIRouter()


def get_publisher(request: Request) -> SubmissionPublisher:
    publisher: SubmissionPublisher = request.app.state.publisher
    return publisher


def get_settings(request: Request) -> IntakeSettings:
    settings: IntakeSettings = request.app.state.settings
    return settings


Publisher = Annotated[SubmissionPublisher, Depends(get_publisher)]
Settings = Annotated[IntakeSettings, Depends(get_settings)]


class Accepted(BaseModel):
    reference: str
    status_url: str
    message: str


class Unavailable(BaseModel):
    error: str
    message: str
    retry_after_s: int


@router.post(
    "/v1/submissions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={
        503: {"model": Unavailable, "description": "Kafka unreachable: nothing was accepted"}
    },
    openapi_extra={
        "requestBody": {"content": {"application/json": {"example": EXAMPLE_QUESTIONNAIRE}}}
    },
)
async def submit(
    questionnaire: QuestionnaireV1, publisher: Publisher, settings: Settings
) -> object:
    """Accept a questionnaire; the reference is returned only once Kafka has it durably."""
    reference = new_reference()
    event = QUESTIONNAIRES.envelope(
        QuestionnaireCompletedV1(
            reference=reference, received_at=datetime.now(UTC), questionnaire=questionnaire
        ),
        subject=reference,
        correlationid=reference,
    )
    with structlog.contextvars.bound_contextvars(reference=reference, event_id=event.id):
        try:
            await publisher.publish(event)
        except BrokerUnavailable as error:
            log.warning("submission_not_accepted", reason=str(error))
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
        log.info("submission_accepted")
    return Accepted(
        reference=reference,
        status_url=f"/v1/submissions/{reference}",
        message="Merci. Votre questionnaire est bien enregistré.",
    )


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz", include_in_schema=False)
async def readyz(publisher: Publisher) -> JSONResponse:
    ready = publisher.ready()
    return JSONResponse(
        status_code=200 if ready else 503,
        content={"kafka": "connected" if ready else "unreachable"},
    )
