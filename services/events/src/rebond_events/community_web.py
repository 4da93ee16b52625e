"""Entry points of the success stories and the peer exchange: the JSON API (`api`: public
submission, moderation by an organiser's key) and the portal pages (`pages`: plain HTML forms,
French first, working without JavaScript). Routes only translate; `community.Community` runs
the use cases. Bodies are limited in rate, size and type by the app's `SubmissionGuard`.
"""

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ValidationError

from rebond_contracts.geography import REGIONS
from rebond_contracts.moderation import VolunteerForModerator, VolunteerStatus
from rebond_contracts.questionnaire import Region, Stage
from rebond_events.api import _GUARD, Organiser
from rebond_events.community import Community
from rebond_events.errors import Conflict, Forbidden, NotFound
from rebond_events.models import LinkRequest, Received
from rebond_events.peers import (
    SIGNED_UP,
    AttendRequest,
    PeerAttending,
    Side,
    VolunteerIn,
)
from rebond_events.portal import templates
from rebond_events.stories import (
    RECEIVED,
    StoryEdit,
    StoryForModerator,
    StoryIn,
    StoryPublic,
    StoryStatus,
    StorySubmitted,
)

api = APIRouter(prefix="/v1")
pages = APIRouter(include_in_schema=False)
#: The path parameters of an e-mailed link (`link_pages`).
L = TypeVar("L", bound="StoryLink | VolunteerLink | MatchLink")

#: The stages a person went through, in the words of the portal (`shared/domain.md`).
STAGES = {
    "pre_procedure": "Difficultés sans procédure",
    "amicable_procedure": "Mandat ad hoc ou conciliation",
    "safeguard": "Sauvegarde",
    "receivership": "Redressement judiciaire",
    "liquidation_in_progress": "Liquidation judiciaire",
    "after_liquidation": "Après une liquidation ou une cession",
    "professional_recovery": "Rétablissement professionnel",
    "unsure": "Situation incertaine",
}
#: NAF sections, shortly.
SECTORS = {
    "A": "Agriculture, pêche", "B": "Industries extractives", "C": "Industrie",
    "D": "Énergie", "E": "Eau, déchets", "F": "Bâtiment, travaux publics",
    "G": "Commerce, garages", "H": "Transport, logistique", "I": "Hôtellerie, restauration",
    "J": "Numérique, édition, médias", "K": "Banque, assurance", "L": "Immobilier",
    "M": "Conseil, études, professions libérales", "N": "Services aux entreprises",
    "O": "Secteur public", "P": "Enseignement, formation", "Q": "Santé, social",
    "R": "Culture, sport, loisirs", "S": "Services aux particuliers, artisanat de service",
    "T": "Emploi à domicile", "U": "Organisations internationales",
}  # fmt: skip
templates.env.globals.update(stages=STAGES, sectors=SECTORS)

#: What each field of the story form says when it is refused (every field of the form).
STORY_MESSAGES = {
    "text": "Racontez votre histoire en 40 à 4 000 caractères, sans adresse, téléphone ni lien "
    "(le texte sera public).",
    "first_name": "Indiquez un prénom (des lettres, espaces, apostrophes et traits d'union), "
    "ou laissez vide.",
    "region": "Choisissez votre région.",
    "stage": "Choisissez la situation que vous avez traversée.",
    "sector": "Choisissez votre secteur d'activité.",
    "failure_year": "Indiquez l'année des difficultés, sur quatre chiffres (depuis 1950).",
    "helped": "Décrivez ce qui vous a aidé en 1 000 caractères au plus, sans adresse, "
    "téléphone ni lien.",
    "email": "Indiquez une adresse e-mail valide, par exemple nom@exemple.fr.",
    "consent_publish": "Cochez la case pour accepter la publication : sans elle, nous ne "
    "pouvons pas publier votre témoignage.",
}
STORIES_BACK = ("/temoignages", "Tous les témoignages")
INVALID_LINK = (
    "Lien invalide",
    "Ce lien n'est pas valide : utilisez celui de l'e-mail reçu. (This link is not valid: use "
    "the one in the e-mail you received.)",
)


#: What each kind of operation may answer besides its success (the fuzz tests hold them to it).
_KEY: dict[int | str, dict[str, Any]] = {401: {"description": "No known organiser API key"}}
_MODERATE: dict[int | str, dict[str, Any]] = {
    **_KEY, **_GUARD,
    404: {"description": "No such story or volunteer"},
    409: {"description": "Not waiting for moderation"},
}  # fmt: skip
_LINK: dict[int | str, dict[str, Any]] = {
    **_GUARD,
    403: {"description": "Invalid link"},
    404: {"description": "Gone (withdrawn, erased, or never was)"},
    409: {"description": "Not possible in this state"},
}


def get_community(request: Request) -> Community:
    community: Community = request.app.state.community
    return community


Stories = Annotated[Community, Depends(get_community)]


# --- JSON API ---------------------------------------------------------------------------------


@api.post(
    "/stories", status_code=status.HTTP_202_ACCEPTED, operation_id="submit_story",
    responses=_GUARD,
)  # fmt: skip
async def submit_story(data: StoryIn, community: Stories) -> StorySubmitted:
    """Submit a success story: kept for moderation; the withdrawal link goes by e-mail."""
    await community.submit_story(data)
    return StorySubmitted(message=RECEIVED[data.locale.value])


@api.get("/stories", operation_id="list_stories")
async def list_stories(
    community: Stories, region: Region | None = None, stage: Stage | None = None
) -> list[StoryPublic]:
    """Published stories, newest first (never their author's contact)."""
    return await community.published_stories(region, stage.value if stage else None)


@api.get("/moderation/stories", operation_id="stories_to_moderate", responses=_KEY)
async def stories_to_moderate(
    _: Organiser, community: Stories, status: StoryStatus = StoryStatus.PENDING
) -> list[StoryForModerator]:
    """Stories waiting for moderation (or those published), for organisers and moderators."""
    return await community.stories_to_moderate(status)


@api.post("/stories/{story_id}/approve", operation_id="approve_story", responses=_MODERATE)
async def approve_story(
    story_id: UUID, moderator: Organiser, community: Stories
) -> StoryForModerator:
    """Publish a pending story; its author is told."""
    return await community.approve_story(moderator, str(story_id))


@api.post(
    "/stories/{story_id}/reject", status_code=status.HTTP_204_NO_CONTENT,
    operation_id="reject_story", responses=_MODERATE,
)  # fmt: skip
async def reject_story(story_id: UUID, moderator: Organiser, community: Stories) -> Response:
    """Decline a pending story: its author is told, the story deleted."""
    await community.reject_story(moderator, str(story_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@api.patch("/stories/{story_id}", operation_id="edit_story", responses=_MODERATE)
async def edit_story(
    story_id: UUID, data: StoryEdit, moderator: Organiser, community: Stories
) -> StoryForModerator:
    """Change a story's words, with its author's agreement (`author_agreed`, `note`)."""
    return await community.edit_story(moderator, str(story_id), data)


@api.post(
    "/stories/{story_id}/withdraw", status_code=status.HTTP_204_NO_CONTENT,
    operation_id="withdraw_story", responses=_LINK,
)  # fmt: skip
async def withdraw_story(story_id: UUID, data: LinkRequest, community: Stories) -> Response:
    """The author withdraws their story (token of the e-mailed link): deleted everywhere."""
    await community.withdraw_story(str(story_id), data.token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- Portal pages -----------------------------------------------------------------------------


def form_errors(error: ValidationError, messages: dict[str, str]) -> dict[str, str]:
    """Each refused field with the sentence the form shows for it (the first error of each)."""
    errors: dict[str, str] = {}
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        errors.setdefault(field, messages.get(field, str(item["msg"])))
    return errors


def parse_form(
    model: type[BaseModel], values: dict[str, Any], messages: dict[str, str]
) -> tuple[Any, dict[str, str]]:
    """`values` (a form's fields, empty ones left out) as `model`, or the errors to show."""
    try:
        return model.model_validate({k: v for k, v in values.items() if v != ""}), {}
    except ValidationError as error:
        return None, form_errors(error, messages)


def public_form(
    path: str,
    template: str,
    model: type[BaseModel],
    messages: dict[str, str],
    consent: str,
    submit: Callable[[Community, Any], Awaitable[object]],
    done: tuple[str, str],
    back: tuple[str, str],
) -> None:
    """A public form's pages at `path`: GET shows it empty; POST reads its fields (those
    `messages` has a sentence for, text but for the `consent` checkbox, given when "yes") and
    shows it again with each refused field's sentence (422), or `submit`s it as `model` and
    shows the `done` page."""

    @pages.get(path, response_class=HTMLResponse)
    async def empty_form(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, template, {"errors": {}, "values": {}})

    @pages.post(path, response_class=HTMLResponse)
    async def posted_form(request: Request, community: Stories) -> HTMLResponse:
        form = await request.form()
        values = {
            name: value if isinstance(value := form.get(name, ""), str) else ""
            for name in messages
            if name != consent
        }
        data, errors = parse_form(model, {**values, consent: form.get(consent) == "yes"}, messages)
        if errors:
            return templates.TemplateResponse(
                request, template, {"errors": errors, "values": values}, status_code=422
            )
        await submit(community, data)
        return message(request, *done, 200, back)


def message(
    request: Request, title: str, text: str, status_code: int, back: tuple[str, str]
) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "message.html", {"title": title, "text": text, "back": back},
        status_code=status_code,
    )  # fmt: skip


def link_pages(
    path: str,
    link: type[L],
    title: str,
    text: str | Callable[[L], str],
    button: str,
    act: Callable[..., Awaitable[object]],
    done: tuple[str, str | Callable[[L], str]],
    back: tuple[str, str],
) -> None:
    """An e-mailed link's pages at `path`, whose parameters FastAPI reads as `link`: GET shows
    `text` and a `button` posting the link's token back (e-mail scanners that open links must
    not act on them); POST `act`s (with the community, the path's values as text, then the
    token) and shows the `done` page, or "invalid link" (403). A text may depend on the link."""

    def said(words: str | Callable[[L], str], at: L) -> str:
        return words if isinstance(words, str) else words(at)

    @pages.get(path, response_class=HTMLResponse)
    async def link_page(
        request: Request, at: Annotated[L, Depends(link)], token: Annotated[str, Query()] = ""
    ) -> HTMLResponse:
        return templates.TemplateResponse(
            request, "confirm_link.html",
            {"title": title, "text": said(text, at), "action": path.format(**asdict(at)),
             "token": token, "button": button, "back": back},
        )  # fmt: skip

    @pages.post(path, response_class=HTMLResponse)
    async def link_used(
        request: Request,
        at: Annotated[L, Depends(link)],
        community: Stories,
        token: Annotated[str, Form()] = "",
    ) -> HTMLResponse:
        try:
            await act(community, *(str(value) for value in asdict(at).values()), token)
        except (Forbidden, NotFound):
            return message(request, *INVALID_LINK, 403, back)
        return message(request, done[0], said(done[1], at), 200, back)


@pages.get("/temoignages", response_class=HTMLResponse)
async def stories_page(
    request: Request,
    community: Stories,
    region: Annotated[str | None, Query()] = None,
    stage: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    """Published stories, filtered by region and stage (an unknown value shows them all)."""
    chosen_region = region if region in REGIONS else None
    chosen_stage = stage if stage in STAGES else None
    shown = await community.published_stories(chosen_region, chosen_stage)
    return templates.TemplateResponse(
        request, "stories.html",
        {"stories": shown, "chosen_region": chosen_region, "chosen_stage": chosen_stage},
    )  # fmt: skip


public_form(
    "/temoignages/proposer", "story_form.html", StoryIn, STORY_MESSAGES, "consent_publish",
    Community.submit_story,
    ("Merci pour votre témoignage", RECEIVED["fr"] + " " + RECEIVED["en"]), STORIES_BACK,
)  # fmt: skip


@dataclass(frozen=True)
class StoryLink:
    """The path of a story's withdrawal link."""

    story_id: UUID


link_pages(
    "/temoignages/{story_id}/retirer", StoryLink, "Retirer mon témoignage",
    "Votre témoignage sera effacé de ce site et de nos fichiers. (Your story will be "
    "deleted from this site and from our records.)",
    "Retirer mon témoignage", Community.withdraw_story,
    ("Témoignage retiré",
     "Votre témoignage est effacé. Merci de l'avoir partagé. (Your story is deleted. Thank "
     "you for sharing it.)"),
    STORIES_BACK,
)  # fmt: skip


# --- Peer volunteers and matches: JSON API ----------------------------------------------------

PEERS_BACK = ("/pairs/devenir-pair", "Devenir pair")
CHANNELS = {"email": "Par e-mail", "phone": "Par téléphone"}
templates.env.globals.update(channels=CHANNELS)
#: What each field of the volunteer form says when it is refused (every field of the form).
VOLUNTEER_MESSAGES = {
    "pseudonym": "Indiquez un prénom ou un pseudonyme : des lettres, espaces, apostrophes et "
    "traits d'union, 80 caractères au plus.",
    "region": "Choisissez votre région.",
    "stage": "Choisissez la situation que vous avez traversée.",
    "sector": "Choisissez votre secteur d'activité.",
    "contact_channel": "Choisissez comment les personnes peuvent vous joindre.",
    "contact": "Indiquez une adresse e-mail (nom@exemple.fr) ou un numéro de téléphone "
    "(06 12 34 56 78), selon le moyen choisi.",
    "availability": "Indiquez vos disponibilités en une ligne, 200 caractères au plus.",
    "monthly_limit": "Indiquez un nombre de mises en relation par mois, de 1 à 10.",
    "email": "Indiquez une adresse e-mail valide, par exemple nom@exemple.fr.",
    "consent": "Cochez la case : sans votre accord, nous ne pouvons présenter personne.",
}
Action = Literal["pause", "resume", "erase"]


class DeclineRequest(LinkRequest):
    side: Side


@api.post(
    "/peers/volunteers", status_code=status.HTTP_202_ACCEPTED, operation_id="sign_up_peer",
    responses=_GUARD,
)  # fmt: skip
async def sign_up_peer(data: VolunteerIn, community: Stories) -> Received:
    """Volunteer as a peer: a confirmation link goes by e-mail; a moderator then approves."""
    await community.sign_up(data)
    return Received(message=SIGNED_UP[data.locale.value])


@api.post("/peers/volunteers/{volunteer_id}/confirm", operation_id="confirm_peer", responses=_LINK)
async def confirm_peer(volunteer_id: UUID, data: LinkRequest, community: Stories) -> dict[str, str]:
    """Confirm a volunteer's address (token of the e-mailed link)."""
    return {"status": await community.confirm_volunteer(str(volunteer_id), data.token)}


@api.get("/moderation/volunteers", operation_id="peers_to_moderate", responses=_KEY)
async def peers_to_moderate(
    _: Organiser, community: Stories, status: VolunteerStatus = VolunteerStatus.PENDING
) -> list[VolunteerForModerator]:
    """Volunteers waiting for moderation (or of another status), without their contact."""
    return await community.volunteers_to_moderate(status)


@api.post(
    "/peers/volunteers/{volunteer_id}/{decision}", operation_id="moderate_peer",
    responses=_MODERATE,
)  # fmt: skip
async def moderate_peer(
    volunteer_id: UUID,
    decision: Literal["approve", "reject"],
    _: Organiser,
    community: Stories,
) -> dict[str, str | None]:
    """Approve a confirmed volunteer, or decline them (they are told, and deleted)."""
    done = await community.moderate_volunteer(str(volunteer_id), decision == "approve")
    return {"status": done}


@api.post(
    "/peers/volunteers/{volunteer_id}/link/{action}", operation_id="manage_peer",
    responses=_LINK,
)  # fmt: skip
async def manage_peer(
    volunteer_id: UUID, action: Action, data: LinkRequest, community: Stories
) -> dict[str, str | None]:
    """The volunteer pauses, resumes or erases themself (token of their e-mailed link)."""
    return {"status": await community.manage_volunteer(str(volunteer_id), data.token, action)}


@api.post("/peers/matches/{match_id}/decline", operation_id="decline_match", responses=_LINK)
async def decline_match(
    match_id: UUID, data: DeclineRequest, community: Stories
) -> dict[str, str | None]:
    """Either side declines an introduction; the next volunteer, if any, is proposed."""
    following = await community.decline_match(str(match_id), data.side, data.token)
    return {"status": "declined", "next_match_id": following}


@api.post("/peers/matches/{match_id}/report", operation_id="report_match", responses=_LINK)
async def report_match(
    match_id: UUID, data: DeclineRequest, community: Stories
) -> dict[str, str | None]:
    """Either side reports a problem with an introduction: the volunteer is introduced to
    nobody until a moderator decides; a person who reported is proposed the next volunteer."""
    following = await community.report_match(str(match_id), data.side, data.token)
    return {"status": "reported", "next_match_id": following}


@api.post(
    "/peers/volunteers/{volunteer_id}/conferences/{event_id}/attend",
    operation_id="attend_peer_session", responses=_LINK,
)  # fmt: skip
async def attend_peer_session(
    volunteer_id: UUID, event_id: UUID, data: AttendRequest, community: Stories
) -> dict[str, bool]:
    """An approved volunteer will attend an upcoming `peer_exchange` conference and agrees
    (`listed`) to be listed on its public page by pseudonym, region and stage."""
    return {"attending": await community.attend(str(volunteer_id), data.token, str(event_id))}


@api.post(
    "/peers/volunteers/{volunteer_id}/conferences/{event_id}/leave",
    operation_id="leave_peer_session", responses=_LINK,
)  # fmt: skip
async def leave_peer_session(
    volunteer_id: UUID, event_id: UUID, data: LinkRequest, community: Stories
) -> dict[str, bool]:
    """The volunteer is no longer listed on the conference."""
    return {
        "attending": await community.leave_session(str(volunteer_id), data.token, str(event_id))
    }


@api.get("/events/{event_id}/peers", operation_id="peers_attending")
async def peers_attending(event_id: UUID, community: Stories) -> list[PeerAttending]:
    """The volunteers listed on a `peer_exchange` conference, with their consent: pseudonym,
    region and stage, never a contact (none for another conference, or an unknown one)."""
    return await community.attendees(str(event_id))


# --- Peer volunteers and matches: pages -------------------------------------------------------


public_form(
    "/pairs/devenir-pair", "volunteer_form.html", VolunteerIn, VOLUNTEER_MESSAGES, "consent",
    Community.sign_up,
    ("Merci de vous proposer", SIGNED_UP["fr"] + " " + SIGNED_UP["en"]), PEERS_BACK,
)  # fmt: skip


@dataclass(frozen=True)
class VolunteerLink:
    """The path of a volunteer's confirmation link."""

    volunteer_id: UUID


link_pages(
    "/pairs/{volunteer_id}/confirmer", VolunteerLink, "Confirmer mon adresse",
    "Un clic pour confirmer votre adresse ; l'équipe validera ensuite votre inscription. "
    "(One click to confirm your address; the team will then approve your sign-up.)",
    "Confirmer mon adresse", Community.confirm_volunteer,
    ("Adresse confirmée",
     "Merci ! Une personne de l'équipe va valider votre inscription ; nous vous écrirons "
     "alors. (Thank you! Someone from the team will approve your sign-up; we will write to "
     "you then.)"),
    PEERS_BACK,
)  # fmt: skip


async def volunteer_acted(
    request: Request,
    act: Awaitable[object],
    done: str,
    refused: tuple[str, str],
    back: tuple[str, str],
) -> HTMLResponse:
    """The page after a form of a volunteer's own page `act`ed with their link: "C'est noté"
    and `done`; "invalid link" (403, back to signing up) for a bad or stale link; or, when
    their status does not allow it, the `refused` title and text (409)."""
    try:
        await act
    except (Forbidden, NotFound):
        return message(request, *INVALID_LINK, 403, PEERS_BACK)
    except Conflict:
        return message(request, *refused, 409, back)
    return message(request, "C'est noté", done, 200, back)


@pages.get("/pairs/{volunteer_id}/gerer", response_class=HTMLResponse)
async def manage_form(
    request: Request,
    volunteer_id: UUID,
    community: Stories,
    token: Annotated[str, Query()] = "",
) -> HTMLResponse:
    """The volunteer's page: pause, resume or leave, and the upcoming peer exchange sessions
    they can say they attend (listed on the session's public page) or withdraw from."""
    try:
        volunteer, sessions = await community.sessions(str(volunteer_id), token)
    except (Forbidden, NotFound):
        return message(request, *INVALID_LINK, 403, PEERS_BACK)
    return templates.TemplateResponse(
        request, "manage.html",
        {"volunteer_id": volunteer_id, "token": token, "sessions": sessions,
         "approved": volunteer.status == VolunteerStatus.APPROVED},
    )  # fmt: skip


@pages.post("/pairs/{volunteer_id}/rencontres/{event_id}", response_class=HTMLResponse)
async def session_done(
    request: Request,
    volunteer_id: UUID,
    event_id: UUID,
    community: Stories,
    token: Annotated[str, Form()] = "",
    action: Annotated[Literal["attend", "leave"], Form()] = "attend",
    listed: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    """The volunteer says they attend a session (their consent to be listed ticked) or no
    longer; back to their page."""
    back = (f"/pairs/{volunteer_id}/gerer?token={token}", "Ma participation comme pair")
    if action == "attend" and listed != "yes":
        return message(
            request, "Votre accord est nécessaire",
            "Cochez la case pour accepter d'être listé·e sur la page de la rencontre : sans "
            "votre accord, nous n'affichons rien. (Tick the box to agree to be listed on the "
            "session's page: without your consent, nothing is shown.)", 422, back,
        )  # fmt: skip
    act = community.attend if action == "attend" else community.leave_session
    return await volunteer_acted(
        request, act(str(volunteer_id), token, str(event_id)), SESSION_DONE[action],
        ("Pas possible pour l'instant",
         "Cette rencontre n'est plus proposée, ou votre inscription est en pause ou attend "
         "la décision de l'équipe. (This session is no longer offered, or your sign-up is "
         "paused or waiting for the team's decision.)"),
        back,
    )  # fmt: skip


SESSION_DONE = {
    "attend": "Vous figurez sur la page publique de la rencontre, par votre pseudonyme, votre "
    "région et la situation traversée, jamais vos coordonnées. Merci ! (You are listed on the "
    "session's public page by pseudonym, region and stage, never your contact details.)",
    "leave": "Vous ne figurez plus sur la page de la rencontre. (You are no longer listed on "
    "the session's page.)",
}


MANAGED = {
    "pause": "Vous êtes en pause : aucune mise en relation d'ici votre reprise. (You are on a "
    "break: no introduction until you resume.)",
    "resume": "C'est reparti : nous pourrons à nouveau vous présenter des personnes. (You are "
    "back: we may introduce people to you again.)",
    "erase": "Vos informations sont effacées. Merci pour votre engagement. (Your details are "
    "deleted. Thank you for your commitment.)",
}


@pages.post("/pairs/{volunteer_id}/gerer", response_class=HTMLResponse)
async def manage_done(
    request: Request,
    volunteer_id: UUID,
    community: Stories,
    token: Annotated[str, Form()] = "",
    action: Annotated[Action, Form()] = "pause",
) -> HTMLResponse:
    return await volunteer_acted(
        request, community.manage_volunteer(str(volunteer_id), token, action), MANAGED[action],
        ("Pas encore possible",
         "Votre inscription attend la décision de l'équipe : la pause et la reprise "
         "viendront ensuite. (Your sign-up is waiting for the team's decision.)"),
        PEERS_BACK,
    )  # fmt: skip


@dataclass(frozen=True)
class MatchLink:
    """The path of a side's links to decline or report an introduction."""

    match_id: UUID
    side: Side


NEXT_PEER = (
    " Si une autre personne est disponible, nous vous la présentons par e-mail. (If someone "
    "else is available, we introduce them by e-mail.)"
)


link_pages(
    "/pairs/mises-en-relation/{match_id}/{side}", MatchLink, "Décliner cette mise en relation",
    "Nous proposerons une autre personne, si nous en avons une. (We will propose someone "
    "else, if we have anyone.)",
    "Décliner", Community.decline_match,
    ("C'est noté", "Merci de nous l'avoir dit. (Thank you for telling us.)" + NEXT_PEER),
    PEERS_BACK,
)  # fmt: skip


def report_text(at: MatchLink) -> str:
    """What a report changes until the team decides, as the side who reports reads it."""
    meanwhile = {
        "person": ("ce pair n'est présenté à personne", "this peer is introduced to nobody"),
        "volunteer": ("nous ne vous présentons personne", "we introduce nobody to you"),
    }[at.side]
    return (
        f"L'équipe de coordination examinera cette mise en relation ; d'ici là, {meanwhile[0]}. "
        "Si vous êtes en danger, appelez le 17 ou le 112. (The coordination team will look at "
        f"this introduction; meanwhile {meanwhile[1]}. If you are in danger, call 17 or 112.)"
    )


def reported(at: MatchLink) -> str:
    """The page after a report: the person who reported is proposed the next volunteer."""
    return (
        "Merci de nous l'avoir dit. L'équipe de coordination examine cette mise en relation. "
        "(Thank you for telling us. The coordination team is looking at this introduction.)"
        + (NEXT_PEER if at.side == "person" else "")
    )


link_pages(
    "/pairs/mises-en-relation/{match_id}/{side}/signaler", MatchLink, "Signaler un problème",
    report_text, "Signaler", Community.report_match, ("Signalement reçu", reported), PEERS_BACK,
)  # fmt: skip
