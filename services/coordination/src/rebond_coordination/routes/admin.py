"""The audit log and the users page (invite, re-invite, deactivate)."""

from datetime import timedelta
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from rebond_contracts.associations import AssociationId
from rebond_contracts.geography import REGION_OF_DEPARTMENT
from rebond_coordination import auth
from rebond_coordination.domain import Role
from rebond_coordination.ports import MailUnavailable
from rebond_coordination.store import EmailTaken, NewUser, UserRow
from rebond_coordination.web import (
    Auditor,
    Deps,
    Form,
    Manager,
    NotFound,
    Signed,
    association_choices,
    chosen_association,
    field,
    render,
    see_other,
)

router = APIRouter(include_in_schema=False)
ACTIONS = {
    "user_created": "Compte créé", "user_invited": "Invitation envoyée",
    "user_reinvited": "Invitation renvoyée", "invitation_accepted": "Invitation acceptée",
    "user_deactivated": "Compte désactivé", "signed_in": "Connexion", "signed_out": "Déconnexion",
    "sign_in_failed": "Connexion refusée", "account_locked": "Compte verrouillé",
    "case_queued": "Dossier entré dans la file", "case_claimed": "Dossier pris en charge",
    "case_released": "Dossier relâché", "case_assigned": "Dossier attribué",
    "case_closed": "Dossier clos", "withdrawn": "Demande retirée par la personne",
    "referral_accepted": "Orientation acceptée", "referral_declined": "Orientation déclinée",
    "outcome_recorded": "Suivi noté", "override_requested": "Ajustement de l'annuaire demandé",
    "override_applied": "Ajustement appliqué par le routeur", "preview_run": "Aperçu d'annuaire",
    "statistics_exported": "Statistiques exportées", "conference_created": "Conférence créée",
    "conference_updated": "Conférence modifiée", "conference_cancelled": "Conférence annulée",
    "registrations_exported": "Inscriptions exportées",
}  # fmt: skip


@router.get("/journal", response_class=HTMLResponse)
async def audit_log(request: Request, signed: Auditor, deps: Deps) -> HTMLResponse:
    association = chosen_association(request, signed)
    entries = await deps.store.audit(signed.scope, association=association)
    return render(
        request, "audit.html",
        {"entries": entries, "actions": ACTIONS, "association": association,
         "associations": association_choices()},
        signed=signed,
    )  # fmt: skip


async def _users_page(
    request: Request, signed: Signed, deps: Deps, *, errors: list[tuple[str, str]] | None = None,
    values: dict[str, str] | None = None, notice: str | None = None, status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    people = await deps.store.users(signed.scope)
    return render(
        request, "users.html",
        {"people": people, "errors": errors or [], "values": values or {}, "notice": notice,
         "associations": association_choices(),
         "invitable_roles": [r for r in Role if signed.scope.coordinator or r is not Role.COORDINATOR]},
        signed=signed, status_code=status_code,
    )  # fmt: skip


@router.get("/utilisateurs", response_class=HTMLResponse)
async def users(request: Request, signed: Manager, deps: Deps) -> HTMLResponse:
    notice = {
        "invite": "Invitation envoyée par e-mail.",
        "desactive": "Compte désactivé ; ses sessions sont fermées.",
    }.get(request.query_params.get("fait", ""))
    return await _users_page(request, signed, deps, notice=notice)


def _parse_invitation(
    signed: Signed, form: Form
) -> tuple[NewUser | None, dict[str, str], list[tuple[str, str]]]:
    names = ("email", "name", "role", "association", "departments", "antenna")
    values = {name: field(form, name) for name in names}
    values["admin"] = "yes" if form.get("admin") == "yes" else ""
    errors: list[tuple[str, str]] = []
    email = values["email"]
    if "@" not in email or "." not in email.rsplit("@", 1)[-1] or len(email) > 254 or " " in email:
        errors.append(("email", "Indiquez une adresse e-mail valide, par exemple nom@exemple.fr."))
    if not values["name"] or len(values["name"]) > 120:
        errors.append(("name", "Indiquez le nom de la personne (120 caractères au plus)."))
    try:
        role = Role(values["role"])
    except ValueError:
        role = None
        errors.append(("role", "Choisissez le rôle."))
    association = values["association"] or (
        signed.scope.association if not signed.scope.coordinator else ""
    )
    if (
        role is not None
        and role is not Role.COORDINATOR
        and association not in {a.value for a in AssociationId}
    ):
        errors.append(("association", "Choisissez l'association de la personne."))
    departments = [
        d.strip().upper() for d in values["departments"].replace(";", ",").split(",") if d.strip()
    ]
    unknown = [d for d in departments if d not in REGION_OF_DEPARTMENT]
    if unknown:
        errors.append(
            ("departments", f"Départements inconnus : {', '.join(unknown)} (exemple : 33, 2A).")
        )
    if departments and role is not Role.MEMBER:
        errors.append(("departments", "Seuls les membres peuvent être limités à une antenne."))
    if errors or role is None:
        return None, values, errors
    admin = values["admin"] == "yes" and role is not Role.COORDINATOR
    new = NewUser(
        email=email, name=values["name"], role=role,
        association_id=None if role is Role.COORDINATOR else association,
        departments=departments or None, antenna=values["antenna"] or None, admin=admin,
    )  # fmt: skip
    if not signed.scope.may_invite(role, new.association_id, admin):
        errors.append(
            (
                "role",
                "Vous ne pouvez inviter que des membres ou organisateurs de votre association.",
            )
        )
        return None, values, errors
    return new, values, errors


@router.post("/utilisateurs/inviter", response_class=HTMLResponse)
async def invite(request: Request, signed: Manager, form: Form, deps: Deps) -> Response:
    new, values, errors = _parse_invitation(signed, form)
    if new is None:
        return await _users_page(
            request, signed, deps, errors=errors, values=values, status_code=422
        )
    token = auth.new_token()
    now = deps.clock()
    valid_for = timedelta(hours=deps.settings.invitation_valid_hours)
    try:
        await deps.store.invite(signed.scope, new, auth.token_hash(token), now, valid_for)
    except EmailTaken:
        errors = [("email", "Un compte existe déjà pour cette adresse.")]
        return await _users_page(
            request, signed, deps, errors=errors, values=values, status_code=409
        )
    return await _send(request, signed, deps, new.email, new.name, token, now + valid_for)


async def _send(
    request: Request,
    signed: Signed,
    deps: Deps,
    email: str,
    name: str,
    token: str,
    expires_at: object,
) -> Response:
    link = f"{deps.settings.public_url.rstrip('/')}/invitation/{quote(token)}"
    try:
        await deps.mailer.send_invitation(
            to=email,
            name=name,
            link=link,
            invited_by=signed.user.name,
            expires_at=expires_at,  # type: ignore[arg-type]
        )
    except MailUnavailable:
        return await _users_page(
            request, signed, deps, status_code=503,
            errors=[("email", "Le compte est créé mais l'e-mail d'invitation n'a pas pu partir. "
                              "Utilisez « Renvoyer l'invitation » dans quelques minutes.")],
        )  # fmt: skip
    return see_other("/utilisateurs?fait=invite")


async def _in_scope(signed: Signed, deps: Deps, user_id: str) -> UserRow:
    found = {user.id: user for user in await deps.store.users(signed.scope)}.get(user_id)
    if found is None:
        raise NotFound()
    return found


@router.post("/utilisateurs/{user_id}/renvoyer", response_class=HTMLResponse)
async def reinvite(
    request: Request, user_id: str, signed: Manager, form: Form, deps: Deps
) -> Response:
    await _in_scope(signed, deps, user_id)
    token = auth.new_token()
    now = deps.clock()
    valid_for = timedelta(hours=deps.settings.invitation_valid_hours)
    person = await deps.store.reinvite(
        signed.scope, user_id, auth.token_hash(token), now, valid_for
    )
    if person is None:
        raise NotFound()
    return await _send(request, signed, deps, person.email, person.name, token, now + valid_for)


@router.post("/utilisateurs/{user_id}/desactiver")
async def deactivate(user_id: str, signed: Manager, form: Form, deps: Deps) -> Response:
    if user_id == signed.user.id:
        raise NotFound()  # one does not lock oneself out from here
    if await deps.store.deactivate(signed.scope, user_id, deps.clock()) is None:
        raise NotFound()
    return see_other("/utilisateurs?fait=desactive")
