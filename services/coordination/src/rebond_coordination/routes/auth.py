"""Sign-in, sign-out, and the invitation link where a new staff member sets their password."""

import math
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from rebond_coordination import auth
from rebond_coordination.web import (
    Deps,
    Form,
    Person,
    field,
    home_of,
    message,
    render,
    see_other,
    services,
)

router = APIRouter(include_in_schema=False)
SIGN_IN_COOKIE = "rebond_console_signin"
WRONG = (
    "Adresse e-mail, mot de passe ou code incorrect. Après {n} essais manqués, le compte est "
    "verrouillé {m} minutes."
)


def _safe_next(value: str | None) -> str | None:
    """Only a path of this site (never `//host` or a full URL): no open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


def _sign_in_page(
    request: Request, errors: list[tuple[str, str]], *, email: str = "", suite: str | None = None,
    status_code: int = 200, notice: str | None = None,
) -> HTMLResponse:  # fmt: skip
    token = auth.new_token()
    response = render(
        request, "signin.html",
        {"errors": errors, "email": email, "suite": suite, "signin_csrf": token, "notice": notice},
        status_code=status_code,
    )  # fmt: skip
    response.set_cookie(
        SIGN_IN_COOKIE, token, httponly=True, samesite="strict", path="/connexion",
        secure=services(request).settings.secure_cookies, max_age=3600,
    )  # fmt: skip
    return response


@router.get("/connexion", response_class=HTMLResponse)
async def sign_in_form(
    request: Request, suite: Annotated[str | None, Query()] = None, fait: str | None = None
) -> HTMLResponse:
    notice = {
        "compte": "Votre compte est prêt : connectez-vous.",
        "sortie": "Vous êtes déconnecté·e.",
    }.get(fait or "")
    return _sign_in_page(request, [], suite=_safe_next(suite), notice=notice)


@router.post("/connexion", response_class=HTMLResponse)
async def sign_in(request: Request, deps: Deps) -> Response:
    """Check the rate limit (per client), the form's CSRF cookie, the lock, the password and
    the TOTP code, then open a session. Every refusal says the same thing, whether the account
    exists or not."""
    settings = deps.settings
    wait = deps.limiter.take(deps.clients.key(request.scope))
    if wait > 0:
        response = message(
            request, "Trop de tentatives",
            "Trop de tentatives de connexion depuis votre adresse. Réessayez dans une minute.", 429,
        )  # fmt: skip
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response
    form = await request.form()
    email, password, code = (
        field(form, "email"),
        str(form.get("password") or ""),
        field(form, "code"),
    )
    suite = _safe_next(field(form, "suite"))
    if not auth.same(field(form, "csrf"), request.cookies.get(SIGN_IN_COOKIE, "") or "-"):
        return _sign_in_page(
            request, [("email", "La page de connexion a expiré : saisissez à nouveau vos identifiants.")],
            email=email, suite=suite, status_code=400,
        )  # fmt: skip
    errors = []
    if not email:
        errors.append(("email", "Indiquez votre adresse e-mail."))
    if not password:
        errors.append(("password", "Indiquez votre mot de passe."))
    if errors:
        return _sign_in_page(request, errors, email=email, suite=suite, status_code=422)
    now = deps.clock()
    user = await deps.store.user_by_email(email)
    wrong = [("email", WRONG.format(n=settings.lockout_threshold, m=settings.lockout_minutes))]
    good = auth.verify_password(user.password_hash if user else None, password)
    if user is None or not user.active:
        return _sign_in_page(request, wrong, email=email, suite=suite, status_code=401)
    if auth.locked(user.locked_until, now):
        return _sign_in_page(request, wrong, email=email, suite=suite, status_code=401)
    step = auth.totp_step(user.totp_secret, code, now) if user.totp_secret else None
    if not good or (user.totp_secret and step is None):
        await deps.store.sign_in_failed(
            user.id, now, settings.lockout_threshold, timedelta(minutes=settings.lockout_minutes)
        )
        return _sign_in_page(request, wrong, email=email, suite=suite, status_code=401)
    token, csrf = auth.new_token(), auth.new_token()
    assert user.password_hash is not None
    rehashed = auth.hash_password(password) if auth.needs_rehash(user.password_hash) else None
    opened = await deps.store.open_session(
        user, auth.token_hash(token), csrf, now, totp_counter=step, rehashed=rehashed
    )
    if not opened:  # the same TOTP code again
        await deps.store.sign_in_failed(
            user.id, now, settings.lockout_threshold, timedelta(minutes=settings.lockout_minutes)
        )
        return _sign_in_page(request, wrong, email=email, suite=suite, status_code=401)
    signed_in = see_other(suite or home_of(user.scope))
    signed_in.set_cookie(
        deps.cookie, token, httponly=True, samesite="strict", path="/",
        secure=settings.secure_cookies, max_age=settings.session_absolute_hours * 3600,
    )  # fmt: skip
    signed_in.delete_cookie(SIGN_IN_COOKIE, path="/connexion")
    return signed_in


@router.post("/deconnexion")
async def sign_out(request: Request, signed: Person, form: Form, deps: Deps) -> Response:
    await deps.store.end_session(signed.session.token_hash, signed.scope, deps.clock())
    response = see_other("/connexion?fait=sortie")
    response.delete_cookie(deps.cookie, path="/", secure=deps.settings.secure_cookies)
    return response


@router.get("/", include_in_schema=False)
async def home(signed: Person) -> Response:
    return see_other(home_of(signed.scope))


# --- invitations ----------------------------------------------------------------------------


def _expired(request: Request) -> HTMLResponse:
    return message(
        request, "Lien d'invitation invalide",
        "Ce lien d'invitation a déjà servi, a expiré ou n'existe pas. Demandez une nouvelle "
        "invitation à la personne qui vous a invité·e.", 404,
    )  # fmt: skip


@router.get("/invitation/{token}", response_class=HTMLResponse)
async def invitation_form(request: Request, token: str, deps: Deps) -> HTMLResponse:
    user = await deps.store.invitation(auth.token_hash(token), deps.clock())
    if user is None:
        return _expired(request)
    secret = auth.new_totp_secret()
    return render(
        request, "invitation.html",
        {"invited": user, "token": token, "totp_secret": secret,
         "totp_uri": auth.totp_uri(secret, user.email), "errors": []},
    )  # fmt: skip


@router.post("/invitation/{token}", response_class=HTMLResponse)
async def accept_invitation(request: Request, token: str, deps: Deps) -> Response:
    """Set the password (and TOTP if asked) through the one-time link. The link itself is the
    credential here (no session yet); it works once (`Store.accept_invitation`)."""
    now = deps.clock()
    user = await deps.store.invitation(auth.token_hash(token), now)
    if user is None:
        return _expired(request)
    form = await request.form()
    password, confirmation = str(form.get("password") or ""), str(form.get("confirmation") or "")
    secret = field(form, "totp_secret")
    wants_totp = form.get("totp") == "yes"
    errors = []
    if problem := auth.password_problem(password, confirmation):
        errors.append(("password", problem))
    if wants_totp and (
        len(secret) < 16 or auth.totp_step(secret, field(form, "code"), now) is None
    ):
        errors.append(("code", "Le code à six chiffres ne correspond pas : saisissez celui que "
                               "votre application affiche maintenant."))  # fmt: skip
    if errors:
        secret = secret if len(secret) >= 16 else auth.new_totp_secret()
        return render(
            request, "invitation.html",
            {"invited": user, "token": token, "totp_secret": secret, "totp_checked": wants_totp,
             "totp_uri": auth.totp_uri(secret, user.email), "errors": errors},
            status_code=422,
        )  # fmt: skip
    accepted = await deps.store.accept_invitation(
        auth.token_hash(token), now, auth.hash_password(password), secret if wants_totp else None
    )
    if accepted is None:
        return _expired(request)
    return see_other("/connexion?fait=compte")
