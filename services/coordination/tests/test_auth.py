"""Sign-in, sessions, CSRF, lockout, rate limit and TOTP through the ASGI app."""

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pyotp
import pytest
from argon2 import PasswordHasher

from rebond_coordination import auth
from rebond_coordination.domain import Role
from rebond_testing.pages import form_csrf

from .conftest import PASSWORD, Console, running


async def test_a_coordinator_signs_in_and_gets_a_strict_http_only_session_cookie(
    console: Console,
) -> None:
    """The right password opens a session (HttpOnly, SameSite=Strict) and lands on the queue."""
    await console.user("cora@rebond.test")
    browser = await console.sign_in("Cora@Rebond.test ")
    assert browser.signed_in.status_code == 303
    assert browser.signed_in.headers["location"] == "/file"
    cookie = next(
        v
        for k, v in browser.signed_in.headers.multi_items()
        if k == "set-cookie" and "rebond_console=" in v
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    page = await browser.get("/file")
    assert page.status_code == 200 and "File humaine" in page.text


async def test_on_https_the_cookie_is_secure_and_host_prefixed(tmp_path: Path) -> None:
    """With an https public URL the session cookie is `__Host-…; Secure`."""
    async with running(
        f"sqlite:///{tmp_path / 'c.db'}", public_url="https://console.rebond.test"
    ) as console:
        await console.user("cora@rebond.test")
        browser = await console.sign_in("cora@rebond.test")
        cookie = next(
            v
            for k, v in browser.signed_in.headers.multi_items()
            if k == "set-cookie" and "Host-" in v
        )
        assert (
            cookie.startswith("__Host-rebond_console=")
            and "Secure" in cookie
            and "Path=/" in cookie
        )


async def test_a_wrong_password_and_an_unknown_account_get_the_same_answer(
    console: Console,
) -> None:
    """Neither says whether the address has an account."""
    await console.user("cora@rebond.test")
    wrong = await console.sign_in("cora@rebond.test", "not the password")
    unknown = await console.sign_in("nobody@rebond.test", "not the password")
    assert wrong.signed_in.status_code == unknown.signed_in.status_code == 401
    assert "Adresse e-mail, mot de passe ou code incorrect" in wrong.signed_in.text
    assert wrong.signed_in.text.count("incorrect") == unknown.signed_in.text.count("incorrect")


async def test_an_empty_form_names_each_missing_field(console: Console) -> None:
    """The error summary links to each field, and each field is marked invalid."""
    client = console.client()
    page = await client.get("/connexion")
    response = await client.post("/connexion", data={"csrf": form_csrf(page.text)})
    assert response.status_code == 422
    assert 'href="#email"' in response.text and 'href="#password"' in response.text
    assert (
        'id="email" name="email" type="email" value="" aria-describedby="email-erreur" aria-invalid="true"'
        in response.text
    )


async def test_five_failures_lock_the_account_for_fifteen_minutes(console: Console) -> None:
    """After the 5th failure even the right password is refused, until the lock ends."""
    await console.user("cora@rebond.test")
    for _ in range(5):
        assert (
            await console.sign_in("cora@rebond.test", "wrong password!")
        ).signed_in.status_code == 401
    assert not (await console.sign_in("cora@rebond.test")).ok
    console.clock.advance(minutes=14)
    assert not (await console.sign_in("cora@rebond.test")).ok
    console.clock.advance(minutes=1)
    assert (await console.sign_in("cora@rebond.test")).ok
    actions = [
        e.action for e in await console.store.audit((await console.user("admin@rebond.test")).scope)
    ]
    assert "account_locked" in actions and actions.count("sign_in_failed") == 5


async def test_sign_in_attempts_are_rate_limited_per_client(tmp_path: Path) -> None:
    """Beyond the burst, a client gets 429 with Retry-After, whatever the account."""
    async with running(
        f"sqlite:///{tmp_path / 'c.db'}", sign_in_per_minute=1, sign_in_burst=3
    ) as console:
        client = console.client()
        response = await client.get("/connexion")
        statuses = []
        for _ in range(4):
            response = await client.post(
                "/connexion",
                data={"email": "x@rebond.test", "password": "p", "csrf": form_csrf(response.text)},
            )
            statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 429]
        assert int(response.headers["retry-after"]) >= 1


async def test_behind_its_proxy_each_person_has_their_own_sign_in_limit(tmp_path: Path) -> None:
    """Behind the authenticating proxy (a peer in COORDINATION_TRUSTED_PROXIES) the limit
    counts the address the proxy forwards: one person's failed attempts do not refuse another
    person's. From any other peer `X-Forwarded-For` is not believed: changing it gives no fresh
    attempts."""

    async def attempts(client: httpx.AsyncClient, forwarded_for: str, count: int) -> list[int]:
        statuses = []
        for _ in range(count):
            csrf = form_csrf((await client.get("/connexion")).text)
            response = await client.post(
                "/connexion",
                data={"email": "x@rebond.test", "password": "p", "csrf": csrf},
                headers={"X-Forwarded-For": forwarded_for},
            )
            statuses.append(response.status_code)
        return statuses

    async with running(
        f"sqlite:///{tmp_path / 'c.db'}", sign_in_per_minute=1, sign_in_burst=2,
        trusted_proxies="10.0.0.0/8",
    ) as console:  # fmt: skip
        proxy = console.client(peer="10.1.2.3")
        assert await attempts(proxy, "203.0.113.7", 3) == [401, 401, 429]
        assert await attempts(proxy, "203.0.113.8", 2) == [401, 401]
        stranger = console.client(peer="198.51.100.1")
        assert await attempts(stranger, "203.0.113.9", 2) == [401, 401]
        assert await attempts(stranger, "203.0.113.10", 1) == [429]


async def test_a_sign_in_form_posted_without_its_cookie_is_refused(console: Console) -> None:
    """Login CSRF: a form posted from elsewhere (no sign-in cookie) opens no session."""
    await console.user("cora@rebond.test")
    client = console.client()
    response = await client.post(
        "/connexion", data={"email": "cora@rebond.test", "password": PASSWORD, "csrf": "forged"}
    )
    assert response.status_code == 400
    assert "rebond_console=" not in response.headers.get("set-cookie", "")


async def test_a_state_changing_form_without_the_sessions_csrf_token_changes_nothing(
    console: Console,
) -> None:
    """A claim posted with a wrong token is refused (403) and the case stays unclaimed."""
    from .conftest import queue_case

    cora = await console.user("cora@rebond.test")
    reference = await queue_case(console.store)
    browser = await console.sign_in("cora@rebond.test")
    refused = await browser.client.post(f"/file/{reference}/prendre", data={"csrf": "forged"})
    assert refused.status_code == 403 and "Formulaire expiré" in refused.text
    missing = await browser.client.post(f"/file/{reference}/prendre")
    assert missing.status_code == 403
    case = await console.store.case(cora.scope, reference)
    assert case is not None and case.claimed_by is None
    accepted = await browser.post(f"/file/{reference}/prendre")
    assert accepted.status_code == 200


async def test_totp_is_required_when_enabled_and_a_code_works_once(console: Console) -> None:
    """Without the code: refused; with it: in; the same code again: refused."""
    secret = pyotp.random_base32()
    await console.user("cora@rebond.test", totp=secret)
    assert not (await console.sign_in("cora@rebond.test")).ok
    code = pyotp.TOTP(secret).at(console.clock())
    assert (await console.sign_in("cora@rebond.test", code=code)).ok
    assert not (await console.sign_in("cora@rebond.test", code=code)).ok
    console.clock.advance(seconds=30)
    assert (
        await console.sign_in("cora@rebond.test", code=pyotp.TOTP(secret).at(console.clock()))
    ).ok


async def test_an_idle_session_ends_and_so_does_a_long_one(console: Console) -> None:
    """30 minutes without a request, or 12 hours after sign-in, send back to the sign-in page."""
    await console.user("cora@rebond.test")
    browser = await console.sign_in("cora@rebond.test")
    console.clock.advance(minutes=29)
    assert (await browser.get("/file")).status_code == 200
    console.clock.advance(minutes=29)
    assert (await browser.get("/file")).status_code == 200  # each request keeps it alive
    console.clock.advance(minutes=30)
    expired = await browser.get("/file")
    assert expired.status_code == 303 and expired.headers["location"].startswith(
        "/connexion?suite=%2Ffile"
    )
    long = await console.sign_in("cora@rebond.test")
    opened = console.clock()
    while (await long.get("/file")).status_code == 200:
        console.clock.advance(minutes=29)
    assert timedelta(hours=12) <= console.clock() - opened < timedelta(hours=12, minutes=29)


async def test_sign_out_revokes_the_session_on_the_server(console: Console) -> None:
    """After sign-out, the old cookie opens nothing, even replayed by hand."""
    await console.user("cora@rebond.test")
    browser = await console.sign_in("cora@rebond.test")
    cookies = dict(browser.client.cookies)
    out = await browser.post("/deconnexion")
    assert out.status_code == 303 and out.headers["location"] == "/connexion?fait=sortie"
    replay = console.client()
    replay.cookies.update(cookies)
    assert (await replay.get("/file")).status_code == 303


async def test_a_deactivated_account_loses_its_sessions_at_once(console: Console) -> None:
    """A coordinator deactivates a member: the member's open session stops working."""
    await console.user("cora@rebond.test")
    marc = await console.user("marc@60000.test", Role.MEMBER, association="60000-rebonds")
    member = await console.sign_in("marc@60000.test")
    assert (await member.get("/boite")).status_code == 200
    cora = await console.sign_in("cora@rebond.test")
    assert (await cora.post(f"/utilisateurs/{marc.id}/desactiver")).status_code == 303
    assert (await member.get("/boite")).status_code == 303
    assert not (await console.sign_in("marc@60000.test")).ok


async def test_every_page_carries_the_security_headers(console: Console) -> None:
    """CSP without inline script, no framing, no sniffing, no referrer."""
    response = await console.client().get("/connexion")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
async def test_the_page_after_sign_in_is_always_on_this_site(console: Console, target: str) -> None:
    """`suite` pointing elsewhere is ignored (no open redirect)."""
    await console.user("cora@rebond.test")
    client = console.client()
    page = await client.get("/connexion", params={"suite": target})
    response = await client.post(
        "/connexion",
        data={
            "email": "cora@rebond.test",
            "password": PASSWORD,
            "csrf": form_csrf(page.text),
            "suite": target,
        },
    )
    assert response.headers["location"] == "/file"


async def test_an_invited_member_sets_a_password_with_totp_then_signs_in(console: Console) -> None:
    """Invitation e-mailed through the mailer; the link sets the password once; TOTP asked."""
    await console.user("cora@rebond.test")
    cora = await console.sign_in("cora@rebond.test")
    invited = await cora.post("/utilisateurs/inviter", data={
        "email": "nina@60000.test", "name": "Nina", "role": "member", "association": "60000-rebonds",
        "departments": "33, 24", "antenna": "Gironde",
    })  # fmt: skip
    assert invited.status_code == 303
    (mail,) = console.mailer.sent
    assert mail.to == "nina@60000.test" and mail.link.startswith("http://console.test/invitation/")
    path = mail.link.removeprefix("http://console.test")
    client = console.client()
    page = await client.get(path)
    assert "Bienvenue, Nina" in page.text
    secret = page.text.split('name="totp_secret" value="')[1].split('"')[0]
    short = await client.post(path, data={"password": "court", "confirmation": "court"})
    assert short.status_code == 422 and "au moins 12 caractères" in short.text
    done = await client.post(path, data={
        "password": PASSWORD, "confirmation": PASSWORD, "totp": "yes", "totp_secret": secret,
        "code": pyotp.TOTP(secret).at(console.clock()),
    })  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/connexion?fait=compte"
    assert (await client.get(path)).status_code == 404  # used once
    console.clock.advance(seconds=60)
    nina = await console.sign_in("nina@60000.test", code=pyotp.TOTP(secret).at(console.clock()))
    assert nina.ok and nina.signed_in.headers["location"] == "/boite"


async def test_an_invitation_link_expires(console: Console) -> None:
    """72 hours later the link says it has expired."""
    await console.user("cora@rebond.test")
    cora = await console.sign_in("cora@rebond.test")
    await cora.post(
        "/utilisateurs/inviter", data={"email": "o@x.test", "name": "O", "role": "coordinator"}
    )
    path = console.mailer.sent[0].link.removeprefix("http://console.test")
    console.clock.advance(hours=72)
    page = await console.client().get(path)
    assert page.status_code == 404 and "a expiré" in page.text


async def test_a_mailer_that_fails_keeps_the_invitation_and_offers_to_send_it_again(
    console: Console,
) -> None:
    """The account waits; "Renvoyer l'invitation" sends a new link once the mailer is back."""
    await console.user("cora@rebond.test")
    cora = await console.sign_in("cora@rebond.test")
    console.mailer.down = True
    failed = await cora.post(
        "/utilisateurs/inviter", data={"email": "o@x.test", "name": "O", "role": "coordinator"}
    )
    assert failed.status_code == 503 and "Renvoyer l'invitation" in failed.text
    console.mailer.down = False
    waiting = await console.store.user_by_email("o@x.test")
    assert waiting is not None and waiting.invited
    assert (await cora.post(f"/utilisateurs/{waiting.id}/renvoyer")).status_code == 303
    assert len(console.mailer.sent) == 1


async def test_the_password_is_asked_on_the_terminal_by_add_user(sqlite_url: str) -> None:
    """`add-user` creates an active account from the typed password, and refuses a short one."""
    from rebond_coordination.__main__ import add_user

    from .conftest import settings_for

    answers = iter([PASSWORD, PASSWORD])
    code = await asyncio.to_thread(
        add_user, ["cora@rebond.test", "--name", "Cora", "--role", "coordinator"],
        settings_for(sqlite_url), lambda _: next(answers),
    )  # fmt: skip
    assert code == 0
    short = iter(["court", "court"])
    assert await asyncio.to_thread(
        add_user, ["x@rebond.test", "--name", "X", "--role", "coordinator"], settings_for(sqlite_url),
        lambda _: next(short),
    ) == 2  # fmt: skip
    async with running(sqlite_url) as console:
        assert (await console.sign_in("cora@rebond.test")).ok


def test_passwords_are_hashed_with_argon2id_and_weaker_hashes_are_replaced() -> None:
    """Production's hasher is argon2id with at least 64 MiB; a hash made with weaker
    parameters is flagged for rehashing at the next sign-in."""
    from argon2 import Type

    assert auth.PRODUCTION_HASHER.type is Type.ID
    assert auth.PRODUCTION_HASHER.memory_cost >= 65536 and auth.PRODUCTION_HASHER.time_cost >= 3
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    assert weak.startswith("$argon2id$")
    assert auth.PRODUCTION_HASHER.check_needs_rehash(weak)
