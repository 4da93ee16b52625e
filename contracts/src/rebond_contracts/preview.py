"""The policy preview: the router's internal `POST /internal/preview`, which the coordination
console asks (issue 21). One shape on both sides, so the console reads what the router writes.

The request is the candidate `directory.yaml` itself (the body, as text, at most
`MAX_DIRECTORY_BYTES`), with `Authorization: Bearer <token>`. The router answers 200 with a
`PreviewResult`, 401 without the right token, 413 for a body too large, and 422 with a
`PreviewProblem` naming the association and the field when the candidate is not a valid
directory, exactly as the router would refuse it at start-up.

A result holds counts only, never a reference or anything about one person: each `Move` says
how many of the replayed decisions went to one association (or the human queue) with the rules
in force and would go to another with the candidate.
"""

from pydantic import BaseModel, ConfigDict, Field

#: The largest candidate directory accepted (the real one is about 5 KiB).
MAX_DIRECTORY_BYTES = 256 * 1024
#: The path of the router's endpoint.
PREVIEW_PATH = "/internal/preview"
#: The token both sides use in development and tests; production refuses it on either side
#: (`ROUTER_PREVIEW_TOKEN`, `COORDINATION_ROUTER_PREVIEW_TOKEN`).
DEVELOPMENT_PREVIEW_TOKEN = "dev-only-router-preview-token-change-me"  # noqa: S105


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Move(_Strict):
    """How many people of the replayed weeks went to `before` and would go to `after`
    (None: the human queue)."""

    before: str | None
    after: str | None
    count: int = Field(ge=0)


class PreviewResult(_Strict):
    """The before/after orientation matrix, as moves (cells with a count of 0 are left out)."""

    #: The rule-set version in force (the router's directory, live overrides laid over it).
    before_version: str
    #: The candidate's `version`.
    after_version: str
    #: How many weeks of decisions were replayed.
    weeks: int = Field(ge=1)
    moves: list[Move]


class PreviewProblem(_Strict):
    """Why a candidate directory is refused (422): the first problem's association and field,
    and every problem in `message`, as the router says it at start-up."""

    message: str
    association: str | None = None
    field: str | None = None
