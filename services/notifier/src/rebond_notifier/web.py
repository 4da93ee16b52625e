"""The answer pages: `GET /reponse/{token}` shows the referral and a confirm button, the POST
records the answer for `responses.<association_id>`. Every refusal is a French page (English
second) with a 4xx status: tampered (400), already answered (409), expired or moved on (410).

The answer is recorded with its message in the outbox, in one transaction
(`DeliveryStore.record_answer`), and the page says "enregistrée" once that committed; the
relay publishes it afterwards (the page asks the dispatcher's next round, at once, to publish
it: `Dispatcher.publish_soon`), and again after a failure until Kafka has it. No transaction waits for Kafka, and an
answer given while Kafka is away is kept, not refused. Publishing it more than once (a crash
between Kafka's acknowledgement and the outbox row's deletion) is safe: its event id is derived
from the referral and the answer, and the router recognises an event id it handled. An erasure
committed before the relay took the answer deletes it unsent, as it deletes everything about
the person; the router would refuse it anyway (its own tombstone).

The token is the last path segment, never a query string, and the pages send no referrer, so it
does not leak to other sites or to access logs that keep query strings.

Before showing the form and again before publishing, the page reads where the referral stands:
the person's erasure, then the latest `referrals.status` the notifier read for it. A referral
that expired, was re-oriented or was withdrawn gets a page saying so, not "acceptée… contactez
la personne": the router would set such an answer aside, and two associations would call the
person. (An answer published before the deadline and read by the router after its expiry is the
one window left: the router's consumer lag, well under its deadline check interval.)
"""

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from html import escape
from typing import Any, TypeVar
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.types import DecoratedCallable

from rebond_contracts.associations import ASSOCIATION_NAMES
from rebond_contracts.payloads import (
    Answer,
    DeclineReason,
    FollowUpAnsweredV1,
    ReferralResponseV1,
    ReferralStatus,
)
from rebond_notifier import messages
from rebond_notifier.signing import (
    Action,
    AnswerClaims,
    FollowUpClaims,
    FollowUpExpired,
    TokenExpired,
    TokenInvalid,
    read_follow_up_token,
    read_token,
)
from rebond_notifier.store import AlreadyAnswered, AlreadyFollowedUp, DeliveryStore, Withdrawn
from rebond_notifier.templates import moment_fr
from rebond_sql.types import Clock

log = structlog.get_logger(__name__)
C = TypeVar("C", AnswerClaims, FollowUpClaims)

REASONS_FR = {
    DeclineReason.UNREACHABLE: "Personne injoignable",
    DeclineReason.NOT_ELIGIBLE: "Ne relève pas de notre association",
    DeclineReason.NO_CAPACITY: "Plus de place pour l'accompagner",
    DeclineReason.DUPLICATE: "Déjà accompagnée par nous (doublon)",
    DeclineReason.OTHER: "Autre raison",
}
#: Statuses after which the association's answer is no longer awaited.
MOVED_ON = {
    ReferralStatus.EXPIRED, ReferralStatus.REORIENTED, ReferralStatus.UNROUTED,
    ReferralStatus.CLOSED,
}  # fmt: skip
ANSWERED = {ReferralStatus.ACCEPTED: "acceptée", ReferralStatus.DECLINED: "déclinée"}
#: The answer form holds one short field; a larger body is refused before it is read whole.
MAX_FORM_BYTES = 4096


#: The pages' look, served as a file of its own: the Content-Security-Policy
#: (`rebond_http.guard`) allows no inline style.
STYLESHEET = """body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;
padding:0 1rem;line-height:1.5;color:#1b1b1b}
button{font-size:1.1rem;padding:.6rem 1.2rem;cursor:pointer}
fieldset{border:1px solid #ccc;padding:1rem}label{display:block;margin:.3rem 0}
.en{color:#555;font-size:.9rem;border-top:1px solid #ddd;padding-top:.5rem}
"""


def page(title: str, body: str, status: int = 200, *, en: str = "") -> HTMLResponse:
    """A page in French, with a short English summary after it when given. Its stylesheet is
    named relative to the page (`/reponse/<token>` -> `/reponse.css`), so the pages also work
    under the path prefix of NOTIFIER_PUBLIC_BASE_URL."""
    english = f"\n<p lang='en' class='en'>{escape(en)}</p>" if en else ""
    html = f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · Portail du rebond</title>
<link rel="stylesheet" href="../reponse.css">
</head><body><main><h1>{escape(title)}</h1>
{body}{english}
</main></body></html>"""
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _refused(error: Exception) -> HTMLResponse:
    if isinstance(error, TokenExpired):
        until = moment_fr(datetime.fromtimestamp(error.claims.expires_at, UTC))
        return page(
            "Lien expiré",
            f"<p>Ce lien de réponse n'est plus valable : il l'était jusqu'au {until} (heure de "
            "Paris), la date limite de réponse de votre association. L'orientation "
            f"<strong>{escape(error.claims.reference)}</strong> a été ou va être proposée à une "
            "autre association : merci de ne pas contacter la personne à ce titre.</p>"
            "<p>Si vous souhaitez encore la prendre en charge, écrivez à l'équipe du "
            "Portail du rebond en citant la référence.</p>",
            410,
            en="This answer link has expired with your association's answer deadline; the "
            "referral moves on to another association. Please do not contact the person.",
        )
    return page(
        "Lien non valide",
        "<p>Ce lien de réponse n'est pas valide : il est incomplet, a été modifié, ou vient d'un "
        "e-mail envoyé avant la mise à jour des liens de réponse.</p>"
        "<p>Utilisez le lien exact du dernier e-mail reçu pour cette orientation (copiez-le en "
        "entier si besoin) ; un rappel en apporte de nouveaux. Vous pouvez aussi répondre avec "
        "le client <code>rebond-association</code>, ou écrire à l'équipe du Portail du rebond en "
        "citant la référence de l'orientation (dans l'objet de l'e-mail).</p>",
        400,
        en="This answer link is not valid (incomplete, modified, or from an e-mail sent before "
        "the links changed). Use the link of the latest e-mail, the rebond-association client, "
        "or write to the portal team quoting the reference.",
    )


def _not_recorded() -> HTMLResponse:
    """The store did not take an answer: nothing is recorded, and the same link still works."""
    return page(
        "Réponse non enregistrée",
        "<p>Votre réponse n'a pas pu être enregistrée pour le moment. "
        "Merci de réessayer dans quelques minutes avec le même lien.</p>",
        503,
        en="Your answer could not be recorded just now; please try again in a few "
        "minutes with the same link.",
    )


def _already(claims: AnswerClaims, verdict: str = "") -> HTMLResponse:
    given = f" ({verdict})" if verdict else ""
    return page(
        "Réponse déjà enregistrée",
        f"<p>Une réponse a déjà été donnée pour l'orientation <strong>"
        f"{escape(claims.reference)}</strong>{given}. Elle ne peut être donnée qu'une fois.</p>",
        409,
        en="An answer was already given for this referral; it can be given only once.",
    )


def _withdrawn(claims: AnswerClaims) -> HTMLResponse:
    return page(
        "Demande retirée",
        f"<p>La personne a retiré sa demande <strong>{escape(claims.reference)}</strong> et "
        "demandé l'effacement de ses données. Merci de ne pas la contacter à ce titre et de "
        "supprimer ce que vous détenez sur cette orientation. Aucune réponse n'est attendue.</p>",
        410,
        en="The person withdrew this request and asked for their data to be erased. Please do "
        "not contact them, and delete what you hold about this referral.",
    )


def _moved_on(claims: AnswerClaims, status: ReferralStatus) -> HTMLResponse:
    reference = f"<strong>{escape(claims.reference)}</strong>"
    if status == ReferralStatus.EXPIRED:
        return page(
            "Délai de réponse dépassé",
            f"<p>Le délai de réponse de votre association pour l'orientation {reference} est "
            "passé : elle est proposée à une autre association ou confiée à l'équipe du "
            "portail. Merci de ne pas contacter la personne au titre de cette orientation.</p>"
            "<p>Si vous pensez pouvoir encore l'aider, écrivez à l'équipe du Portail du rebond "
            "en citant la référence.</p>",
            410,
            en="The answer deadline has passed: the referral has moved on to another "
            "association or to the portal team. Please do not contact the person.",
        )
    return page(
        "Orientation confiée ailleurs",
        f"<p>L'orientation {reference} n'est plus confiée à votre association : elle est "
        "proposée à une autre association ou suivie par l'équipe du portail. Merci de ne pas "
        "contacter la personne à ce titre ; aucune réponse n'est attendue de vous.</p>",
        410,
        en="This referral is no longer with your association. Please do not contact the "
        "person; no answer is expected from you.",
    )


#: The pages as the OpenAPI document describes them (HTML, one status per outcome).
_HTML = {"content": {"text/html": {"schema": {"type": "string"}}}}
_PAGES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The page (form, or confirmation)", **_HTML},
    400: {"description": "Invalid link, or no decline reason given", **_HTML},
    409: {"description": "Already answered", **_HTML},
    410: {"description": "Expired, or the referral moved on or was withdrawn", **_HTML},
    413: {"description": "Form too large", **_HTML},
    503: {"description": "The answer could not be recorded: try again", **_HTML},
}
_FORM = {
    "requestBody": {
        "required": False,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "reason": {"type": "string", "enum": [r.value for r in DeclineReason]}
                    },
                }
            }
        },
    }
}


async def _opened(
    claims: C | HTMLResponse, stands: Callable[[C], Awaitable[HTMLResponse | None]]
) -> C | HTMLResponse:
    """A link's `claims` while its answer is still awaited; else the page that says why not:
    the link refused (a page already, expired or altered), or `stands` (the answer given, the
    request withdrawn, the referral moved on)."""
    if isinstance(claims, HTMLResponse):
        return claims
    page = await stands(claims)
    return claims if page is None else page


def _page_route(
    router: APIRouter, method: str, path: str, summary: str, **extra: Any
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """`router`'s decorator of an HTML page of a link, with the refusals it may answer."""
    return router.api_route(
        path, methods=[method], response_class=HTMLResponse, summary=summary, responses=_PAGES,
        **extra,
    )  # fmt: skip


def build_router(
    store: DeliveryStore,
    key: bytes,
    publish_soon: Callable[[str], None],
    clock: Clock,
) -> APIRouter:
    """The answer pages: links signed with `key`, answers recorded in `store` with their
    message, which `publish_soon(reference)` then has published."""
    router = APIRouter(tags=["answer links"])

    @router.get("/reponse.css", include_in_schema=False)
    async def stylesheet() -> Response:
        return Response(
            STYLESHEET, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
        )

    def check(token: str) -> AnswerClaims | HTMLResponse:
        try:
            return read_token(key, token)
        except (TokenExpired, TokenInvalid) as error:
            return _refused(error)

    async def where_it_stands(claims: AnswerClaims) -> HTMLResponse | None:
        """A page when the answer is no longer awaited; None when it still is (or when no
        status was read yet: the token, bound to the deadline, then decides)."""
        if await store.erased_among([claims.reference]):
            return _withdrawn(claims)
        if await store.answered(str(claims.referral_id)):
            return _already(claims)
        state = await store.referral_state(str(claims.referral_id))
        if state is None:
            return None
        if state.status in ANSWERED:
            return _already(claims, ANSWERED[state.status])
        if state.status in MOVED_ON:
            return _moved_on(claims, state.status)
        return None

    @_page_route(
        router, "GET", "/reponse/{token}", "The answer page of an e-mail link (accept or decline)"
    )
    async def show(token: str) -> HTMLResponse:
        claims = await _opened(check(token), where_it_stands)
        if isinstance(claims, HTMLResponse):
            return claims
        name = escape(ASSOCIATION_NAMES[claims.association_id])
        reference = escape(claims.reference)
        if claims.action == Action.ACCEPT:
            return page(
                "Accepter l'orientation",
                f"<p>{name} : vous allez accepter l'orientation <strong id='reference'>"
                f"{reference}</strong> et contacter la personne.</p>"
                "<form method='post'><button type='submit'>Confirmer : j'accepte</button></form>",
                en="Confirm to accept this referral; you will then contact the person.",
            )
        options = "".join(
            f"<label><input type='radio' name='reason' value='{r.value}' required> "
            f"{escape(label)}</label>"
            for r, label in REASONS_FR.items()
        )
        return page(
            "Décliner l'orientation",
            f"<p>{name} : vous allez décliner l'orientation <strong id='reference'>{reference}"
            "</strong>. Elle sera proposée à une autre association.</p>"
            f"<form method='post'><fieldset><legend>Pour quelle raison ?</legend>{options}"
            "</fieldset><p><button type='submit'>Confirmer : je décline</button></p></form>",
            en="Choose a reason and confirm to decline; the referral goes to another association.",
        )

    @_page_route(
        router, "POST", "/reponse/{token}", "Confirm the answer of an e-mail link",
        openapi_extra=_FORM,
    )  # fmt: skip
    async def answer(token: str, request: Request) -> HTMLResponse:
        # The form first: a reason that is none of those offered (no browser sends one) is
        # refused naming the field, whatever the link.
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_FORM_BYTES:
                return page("Formulaire trop long", "<p>Ce formulaire est trop long.</p>", 413)
        given = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).get("reason")
        try:
            reason = DeclineReason(given[0]) if given else None
        except ValueError:
            return page(
                "Raison inconnue",
                "<p>Le champ <code>reason</code> n'est pas une des raisons proposées. "
                "<a href=''>Revenir au formulaire</a></p>",
                400,
                en="The field `reason` is not one of the reasons offered.",
            )
        claims = check(token)
        if isinstance(claims, HTMLResponse):
            return claims
        if claims.action == Action.DECLINE and reason is None:
            return page(
                "Raison manquante",
                "<p>Merci de choisir une raison avant de décliner (champ <code>reason</code>). "
                "<a href=''>Revenir au formulaire</a></p>",
                400,
                en="Please choose a reason before declining (field `reason`).",
            )
        if claims.action == Action.ACCEPT:
            reason = None  # an acceptance carries no reason, whatever the form held
        if (stands := await where_it_stands(claims)) is not None:
            return stands
        now = clock()
        response = ReferralResponseV1(
            referral_id=claims.referral_id,
            reference=claims.reference,
            answer=Answer(claims.action.value),
            reason=reason,
            answered_at=now,
        )
        started = time.monotonic()
        try:
            await store.record_answer(
                str(claims.referral_id),
                claims.association_id.value,
                claims.action.value,
                reason.value if reason else None,
                messages.answered(claims.association_id, response),
                reference=claims.reference,
                now=now,
            )
        except AlreadyAnswered:
            return _already(claims)
        except Withdrawn:
            return _withdrawn(claims)
        except Exception:  # the store did not take it: nothing recorded, the link still works
            log.exception("answer_not_recorded", reference=claims.reference)
            return _not_recorded()
        publish_soon(claims.reference)
        log.info(
            "answer_recorded",
            reference=claims.reference,
            association=claims.association_id,
            answer=claims.action.value,
            took_ms=round((time.monotonic() - started) * 1000),
        )
        verdict = "acceptée" if claims.action == Action.ACCEPT else "déclinée"
        return page(
            "Merci, c'est enregistré",
            f"<p id='done'>L'orientation <strong>{escape(claims.reference)}</strong> est "
            f"{verdict}.</p>"
            + (
                "<p>Merci de contacter la personne rapidement, par le moyen qu'elle préfère.</p>"
                if claims.action == Action.ACCEPT
                else "<p>Elle sera proposée à une autre association. Merci.</p>"
            ),
            en="Thank you, your answer is recorded."
            + (" Please contact the person soon." if claims.action == Action.ACCEPT else ""),
        )

    router.include_router(_follow_up_router(store, key, publish_soon, clock))
    return router


def _follow_up_refused(error: TokenInvalid | FollowUpExpired) -> HTMLResponse:
    if isinstance(error, FollowUpExpired):
        return page(
            "Lien expiré",
            "<p>Ce lien n'est plus valable. Si vous n'avez pas été contacté·e, ou si vous avez "
            "encore besoin d'aide, refaites une demande sur le portail : nous la prendrons "
            "en charge.</p>",
            410,
            en="This link has expired. If you were not contacted or still need help, make a "
            "new request on the portal.",
        )
    return page(
        "Lien non valide",
        "<p>Ce lien n'est pas valide : il est incomplet ou a été modifié. Utilisez le lien "
        "exact de l'e-mail reçu (copiez-le en entier si besoin).</p>",
        400,
        en="This link is not valid (incomplete or modified). Use the exact link of the e-mail.",
    )


def _follow_up_thanks(contacted: bool, status: int = 200) -> HTMLResponse:
    if contacted:
        return page(
            "Merci pour votre réponse",
            "<p id='done'>C'est noté : vous avez été contacté·e. Nous vous souhaitons le "
            "meilleur pour la suite.</p>",
            status,
            en="Thank you: we have noted that you were contacted.",
        )
    return page(
        "Merci pour votre réponse",
        "<p id='done'>C'est noté : vous n'avez pas été contacté·e. L'équipe du Portail du "
        "rebond reprend votre demande et vous rappellera.</p>",
        status,
        en="Thank you: we have noted that you were not contacted. The portal team takes your "
        "request over and will call you back.",
    )


def _follow_up_router(
    store: DeliveryStore,
    key: bytes,
    publish_soon: Callable[[str], None],
    clock: Clock,
) -> APIRouter:
    """The person's follow-up pages: `GET /contact/{token}` shows the answer the link carries
    and a button; the POST records it once (`DeliveryStore.record_follow_up`, with its
    `FollowUpAnsweredV1` in the outbox) and `publish_soon` has it published. The GET changes
    nothing, so a mail client or a scanner that opens links answers nothing."""
    router = APIRouter(tags=["follow-up links"])

    def check(token: str) -> FollowUpClaims | HTMLResponse:
        try:
            return read_follow_up_token(key, token)
        except (FollowUpExpired, TokenInvalid) as error:
            return _follow_up_refused(error)

    async def already(claims: FollowUpClaims) -> HTMLResponse | None:
        if await store.erased_among([claims.reference]):
            return page(
                "Demande retirée",
                "<p>Cette demande a été retirée et ses données effacées : aucune réponse "
                "n'est attendue.</p>",
                410,
                en="This request was withdrawn and its data erased; no answer is expected.",
            )
        given = await store.follow_up_given(str(claims.referral_id))
        return None if given is None else _follow_up_thanks(given)

    @_page_route(
        router, "GET", "/contact/{token}", "The person's follow-up page: were they contacted?"
    )
    async def ask(token: str) -> HTMLResponse:
        claims = await _opened(check(token), already)
        if isinstance(claims, HTMLResponse):
            return claims
        answer = (
            "Oui, j'ai été contacté·e" if claims.contacted else "Non, personne ne m'a contacté·e"
        )
        return page(
            "Avez-vous été contacté·e ?",
            f"<p>Votre demande <strong>{escape(claims.reference)}</strong> a été acceptée par "
            f"{escape(ASSOCIATION_NAMES[claims.association_id])}. Votre réponse :</p>"
            f"<form method='post'><button type='submit'>{escape(answer)}</button></form>",
            en="Your request was accepted by an association. Confirm your answer with the "
            "button: "
            + ("yes, I was contacted." if claims.contacted else "no, nobody contacted me."),
        )

    @_page_route(router, "POST", "/contact/{token}", "Confirm the person's follow-up answer")
    async def confirm(token: str) -> HTMLResponse:
        claims = await _opened(check(token), already)
        if isinstance(claims, HTMLResponse):
            return claims
        try:
            # Counted in the statistics only with the person's consent, kept with their address
            # (gone after an erasure: then nothing is recorded below either).
            person = (await store.people([claims.reference])).get(claims.reference)
        except Exception:  # the store did not answer: nothing recorded, the link still works
            log.exception("follow_up_not_recorded", reference=claims.reference)
            return _not_recorded()
        answer = FollowUpAnsweredV1(
            reference=claims.reference, referral_id=claims.referral_id,
            association_id=claims.association_id, contacted=claims.contacted,
            answered_at=clock(), statistics_consent=person is not None and person.statistics,
        )  # fmt: skip
        try:
            await store.record_follow_up(
                str(claims.referral_id), claims.contacted,
                messages.followed_up(answer, claims.reference), reference=claims.reference,
                now=answer.answered_at,
            )  # fmt: skip
        except (AlreadyFollowedUp, Withdrawn):
            return await already(claims) or _follow_up_thanks(claims.contacted)
        except Exception:  # the store did not take it: nothing recorded, the link still works
            log.exception("follow_up_not_recorded", reference=claims.reference)
            return _not_recorded()
        publish_soon(claims.reference)
        log.info("follow_up_recorded", reference=claims.reference, contacted=claims.contacted)
        return _follow_up_thanks(claims.contacted)

    return router
