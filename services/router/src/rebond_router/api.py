"""The router's one internal endpoint: `POST /internal/preview` (`rebond_contracts.preview`).

It only translates: the token is checked, the body read (bounded) and decoded, and the
candidate handed to the `Previewer`; each refusal is a status and a body naming what to fix,
never a 500:

- **401** without `Authorization: Bearer <ROUTER_PREVIEW_TOKEN>` or with another token. The
  comparison is `hmac.compare_digest`, so its time does not tell how much of a guess was right.
  The token is checked before the body is read: an unauthenticated caller costs nothing.
- **413** for a body over `MAX_DIRECTORY_BYTES`, counted as it arrives (a missing or false
  `Content-Length` changes nothing).
- **422** (`PreviewProblem`) for a body that is not UTF-8, or not a directory the router would
  start with: the association and the field of the first problem, every problem in `message`
  (the start-up check's own words: `parse_directory`).
- **503** when the store does not answer: nothing was changed, the console says to try again.
"""

import hmac
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError

from rebond_contracts.preview import (
    MAX_DIRECTORY_BYTES,
    PREVIEW_PATH,
    PreviewProblem,
    PreviewResult,
)
from rebond_router.directory import DirectoryError
from rebond_router.preview import Previewer
from rebond_router.referral import Rejected

log = structlog.get_logger(__name__)
_bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _problem(
    status: int, problem: PreviewProblem, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(problem.model_dump(), status_code=status, headers=headers)


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def preview_routes(previewer: Previewer, token: SecretStr) -> APIRouter:
    """The endpoint, on `previewer`, for callers presenting `token`."""
    expected = token.get_secret_value().encode()
    routes = APIRouter()

    @routes.post(
        PREVIEW_PATH,
        response_model=PreviewResult,
        summary="Replay recent decisions with a candidate directory (the console's preview)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/yaml": {"schema": {"type": "string"}}},
            }
        },
        responses={
            401: {"model": PreviewProblem, "description": "No token, or not the right one"},
            413: {"model": PreviewProblem, "description": "The candidate is too large"},
            422: {"model": PreviewProblem, "description": "Not a valid directory"},
            503: {"model": PreviewProblem, "description": "The store does not answer"},
        },
    )
    async def preview(request: Request, credentials: Credentials) -> Response:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            return _problem(
                401,
                PreviewProblem(message="a valid bearer token is required (ROUTER_PREVIEW_TOKEN)"),
                {"WWW-Authenticate": "Bearer"},
            )
        body = await _bounded_body(request, MAX_DIRECTORY_BYTES)
        if body is None:
            return _problem(
                413,
                PreviewProblem(
                    message=f"the candidate directory exceeds {MAX_DIRECTORY_BYTES} bytes",
                    field="body",
                ),
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return _problem(422, PreviewProblem(message="the body is not UTF-8 text", field="body"))
        try:
            result = await previewer(text)
        except DirectoryError as error:
            first = error.problems[0] if error.problems else None
            return _problem(
                422,
                PreviewProblem(
                    message=str(error),
                    association=first.association if first else None,
                    field=first.field if first else None,
                ),
            )
        except Rejected as error:  # a live override the candidate cannot take
            return _problem(422, PreviewProblem(message=str(error)))
        except (SQLAlchemyError, OSError) as error:
            log.warning("preview_store_unavailable", error=type(error).__name__)
            return _problem(
                503, PreviewProblem(message="the router's store does not answer; try again")
            )
        log.info(
            "previewed",
            before=result.before_version,
            after=result.after_version,
            decisions=sum(move.count for move in result.moves),
        )
        return JSONResponse(result.model_dump(mode="json"))

    return routes
