"""Moderation of the success stories and the peer volunteers (issue 24), through the events
service's API (the `EventsClient` port): nothing is public, and no volunteer is introduced to
anyone, before someone here approved it. Coordinators, association members and organisers
moderate; the events API is called with their association's key (a coordinator's: the first
association's with a key), and each decision is written to the audit log. A story or volunteer
decided meanwhile by someone else is "already handled", the events service down a 503 page."""

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from rebond_contracts.associations import AssociationId
from rebond_coordination.ports import EventsNotFound
from rebond_coordination.web import Deps, Form, Moderator, Signed, render, see_other

router = APIRouter(include_in_schema=False)
Kind = Literal["temoignages", "pairs"]


def _on_behalf_of(signed: Signed) -> str:
    """The association whose organiser key carries the decision to the events API."""
    return signed.scope.association or AssociationId.SECOND_SOUFFLE.value


@router.get("/moderation", response_class=HTMLResponse)
async def pending(request: Request, signed: Moderator, deps: Deps) -> HTMLResponse:
    association = _on_behalf_of(signed)
    stories = await deps.events.stories_to_moderate(association)
    volunteers = await deps.events.volunteers_to_moderate(association)
    return render(
        request, "moderation.html", {"stories": stories, "volunteers": volunteers},
        signed=signed,
    )  # fmt: skip


@router.post("/moderation/{kind}/{subject_id}/{decision}")
async def decide(
    kind: Kind,
    subject_id: str,
    decision: Literal["approuver", "refuser"],
    signed: Moderator,
    deps: Deps,
    _: Form,
) -> Response:
    association = _on_behalf_of(signed)
    approve = decision == "approuver"
    try:
        if kind == "temoignages":
            await deps.events.moderate_story(association, subject_id, approve)
        else:
            await deps.events.moderate_volunteer(association, subject_id, approve)
    except EventsNotFound:
        return see_other("/moderation?fait=deja")
    action = f"{'story' if kind == 'temoignages' else 'volunteer'}_{'approved' if approve else 'rejected'}"
    await deps.store.log(
        signed.scope, action, deps.clock(), association_id=signed.scope.association,
        subject=subject_id,
    )  # fmt: skip
    return see_other(f"/moderation?fait={decision}")
