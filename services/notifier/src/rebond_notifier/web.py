"""The answer pages: `GET /reponse/{token}` shows the referral and a confirm button, the POST
publishes the answer to `responses.<association_id>`. Every refusal is a French page with a
4xx status: tampered (400), already answered (409), expired or withdrawn by the person (410).
"""

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from html import escape
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from rebond_contracts.associations import ASSOCIATION_NAMES, AssociationId
from rebond_contracts.payloads import Answer, DeclineReason, ReferralResponseV1
from rebond_notifier.signing import Action, AnswerClaims, TokenExpired, TokenInvalid, read_token
from rebond_notifier.store import AlreadyAnswered, DeliveryStore, Withdrawn

log = structlog.get_logger(__name__)

REASONS_FR = {
    DeclineReason.UNREACHABLE: "Personne injoignable",
    DeclineReason.NOT_ELIGIBLE: "Ne relève pas de notre association",
    DeclineReason.NO_CAPACITY: "Plus de place pour l'accompagner",
    DeclineReason.DUPLICATE: "Déjà accompagnée par nous (doublon)",
    DeclineReason.OTHER: "Autre raison",
}

ResponsePublisher = Callable[[AssociationId, ReferralResponseV1], Awaitable[None]]


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · Portail du rebond</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;
line-height:1.5;color:#1b1b1b}}button{{font-size:1.1rem;padding:.6rem 1.2rem;cursor:pointer}}
fieldset{{border:1px solid #ccc;padding:1rem}}label{{display:block;margin:.3rem 0}}</style>
</head><body><main><h1>{escape(title)}</h1>
{body}
</main></body></html>"""
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _refused(error: Exception) -> HTMLResponse:
    if isinstance(error, TokenExpired):
        return page(
            "Lien expiré",
            "<p>Ce lien de réponse a expiré (il est valable 8 jours). L'orientation "
            f"{escape(error.claims.reference)} a peut-être été proposée à une autre association."
            "</p><p>Si vous souhaitez encore la prendre en charge, écrivez à l'équipe du "
            "Portail du rebond en citant la référence.</p>",
            410,
        )
    return page(
        "Lien non valide",
        "<p>Ce lien de réponse n'est pas valide : il est incomplet ou a été modifié. "
        "Utilisez le lien exact reçu par e-mail (copiez-le en entier si besoin).</p>",
        400,
    )


def _already(claims: AnswerClaims) -> HTMLResponse:
    return page(
        "Réponse déjà enregistrée",
        f"<p>Une réponse a déjà été donnée pour l'orientation <strong>"
        f"{escape(claims.reference)}</strong>. Elle ne peut être donnée qu'une fois.</p>",
        409,
    )


def _withdrawn(claims: AnswerClaims) -> HTMLResponse:
    return page(
        "Orientation retirée",
        f"<p>La personne a retiré sa demande <strong>{escape(claims.reference)}</strong> et "
        "demandé l'effacement de ses données : elle ne peut plus recevoir de réponse. Merci de "
        "supprimer ce que vous en avez gardé.</p>",
        410,
    )


def build_router(store: DeliveryStore, key: bytes, publish: ResponsePublisher) -> APIRouter:
    router = APIRouter()

    def check(token: str) -> AnswerClaims | HTMLResponse:
        try:
            return read_token(key, token)
        except (TokenExpired, TokenInvalid) as error:
            return _refused(error)

    @router.get("/reponse/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def show(token: str) -> HTMLResponse:
        claims = check(token)
        if isinstance(claims, HTMLResponse):
            return claims
        if await store.erased_among([claims.reference]):
            return _withdrawn(claims)
        if await store.answered(str(claims.referral_id)):
            return _already(claims)
        name = escape(ASSOCIATION_NAMES[claims.association_id])
        reference = escape(claims.reference)
        if claims.action == Action.ACCEPT:
            return page(
                "Accepter l'orientation",
                f"<p>{name} : vous allez accepter l'orientation <strong id='reference'>"
                f"{reference}</strong> et contacter la personne.</p>"
                "<form method='post'><button type='submit'>Confirmer : j'accepte</button></form>",
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
        )

    @router.post("/reponse/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def answer(token: str, request: Request) -> HTMLResponse:
        claims = check(token)
        if isinstance(claims, HTMLResponse):
            return claims
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        reason: DeclineReason | None = None
        if claims.action == Action.DECLINE:
            try:
                reason = DeclineReason(form.get("reason", [""])[0])
            except ValueError:
                return page(
                    "Raison manquante",
                    "<p>Merci de choisir une raison avant de décliner. "
                    "<a href=''>Revenir au formulaire</a></p>",
                    400,
                )
        response = ReferralResponseV1(
            referral_id=claims.referral_id,
            reference=claims.reference,
            answer=Answer(claims.action.value),
            reason=reason,
            answered_at=datetime.now(UTC),
        )
        started = time.monotonic()
        try:
            await store.record_answer(
                str(claims.referral_id),
                claims.association_id.value,
                claims.action.value,
                reason.value if reason else None,
                lambda: publish(claims.association_id, response),
                reference=claims.reference,
            )
        except AlreadyAnswered:
            return _already(claims)
        except Withdrawn:
            return _withdrawn(claims)
        except Exception:  # Kafka did not acknowledge: nothing recorded, the link still works
            log.exception("answer_not_published", reference=claims.reference)
            return page(
                "Réponse non enregistrée",
                "<p>Votre réponse n'a pas pu être enregistrée pour le moment. "
                "Merci de réessayer dans quelques minutes avec le même lien.</p>",
                503,
            )
        log.info(
            "answer_published",
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
        )

    return router
