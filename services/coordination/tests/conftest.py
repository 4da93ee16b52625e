"""Fixtures of the coordination service's tests: the app on a real database (migrated as in
production), fakes behind every port, a clock the test moves, and signed-in clients."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from rebond_contracts.payloads import new_reference
from rebond_coordination import auth
from rebond_coordination.app import App, build
from rebond_coordination.domain import Cause, Role
from rebond_coordination.facts import CallbackContact, CaseQueued, ReferralOffered, TriedAssociation
from rebond_coordination.fakes import FakeEvents, FakeMailer, FakeOutbound, FakePreview
from rebond_coordination.projections import case_queued, referral_offered
from rebond_coordination.settings import CoordinationSettings
from rebond_coordination.store import NewUser, Store, UserRow, migrate
from rebond_testing.pages import form_csrf

BASE = "http://console.test"
PASSWORD = "un mot de passe assez long"
START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # a Monday


class Clock:
    """The time the app sees; tests move it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def settings_for(database_url: str, **overrides: Any) -> CoordinationSettings:
    values: dict[str, Any] = {
        "environment": "test", "database_url": database_url, "public_url": BASE,
        "relay_interval_s": 3600, "metrics_interval_s": 3600, "sign_in_per_minute": 600,
        "sign_in_burst": 100,
    }  # fmt: skip
    return CoordinationSettings(**{**values, **overrides})


@dataclass
class Console:
    app: App
    clock: Clock
    outbound: FakeOutbound
    mailer: FakeMailer
    preview: FakePreview
    events: FakeEvents
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def store(self) -> Store:
        return self.app.store

    @asynccontextmanager
    async def served(self) -> AsyncIterator["Console"]:
        """The app through its lifespan; the clients the test opened are closed after."""
        async with self.app.web.router.lifespan_context(self.app.web):
            try:
                yield self
            finally:
                for client in self.clients:
                    await client.aclose()

    async def user(
        self, email: str, role: Role = Role.COORDINATOR, *, association: str | None = None,
        departments: list[str] | None = None, admin: bool = False, totp: str | None = None,
        name: str | None = None,
    ) -> UserRow:  # fmt: skip
        new = NewUser(
            email=email, name=name or email.split("@")[0].title(), role=role,
            association_id=association, departments=departments, admin=admin,
        )  # fmt: skip
        await self.store.create_user(
            new, auth.hash_password(PASSWORD), None, self.clock(), totp_secret=totp
        )
        found = await self.store.user_by_email(email)
        assert found is not None
        return found

    def client(self, peer: str = "127.0.0.1") -> httpx.AsyncClient:
        """A client of the console, its requests coming from `peer` (the TCP peer's address)."""
        base = self.app.services.settings.public_url
        transport = httpx.ASGITransport(app=self.app.web, client=(peer, 50000))
        client = httpx.AsyncClient(transport=transport, base_url=base)
        self.clients.append(client)
        return client

    async def sign_in(
        self,
        email: str,
        password: str = PASSWORD,
        code: str = "",
        client: httpx.AsyncClient | None = None,
    ) -> "Browser":
        client = client or self.client()
        page = await client.get("/connexion")
        response = await client.post(
            "/connexion",
            data={"email": email, "password": password, "code": code, "csrf": form_csrf(page.text)},
        )
        return Browser(client, response)


@dataclass
class Browser:
    """A signed-in client and the response to its sign-in."""

    client: httpx.AsyncClient
    signed_in: httpx.Response

    @property
    def ok(self) -> bool:
        return self.signed_in.status_code == 303

    async def csrf(self) -> str:
        return form_csrf((await self.client.get("/journal")).text)

    async def post(
        self, path: str, data: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A form post with this session's CSRF token."""
        return await self.client.post(
            path, data={"csrf": await self.csrf(), **(data or {})}, **kwargs
        )

    async def get(self, path: str) -> httpx.Response:
        return await self.client.get(path)


@asynccontextmanager
async def running(database_url: str, **overrides: Any) -> AsyncIterator[Console]:
    clock = Clock()
    outbound, mailer, preview, events = FakeOutbound(), FakeMailer(), FakePreview(), FakeEvents()
    app = build(
        settings_for(database_url, **overrides), outbound=outbound, mailer=mailer,
        preview=preview, events=events, clock=clock,
    )  # fmt: skip
    async with Console(app, clock, outbound, mailer, preview, events).served() as console:
        yield console


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with tiny costs: the tests hash and check hundreds of passwords (production's
    parameters are checked in test_auth.py)."""
    monkeypatch.setattr(
        auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'coordination.sqlite3'}"


@pytest.fixture
async def console(sqlite_url: str) -> AsyncIterator[Console]:
    """The console on a fresh SQLite file, with fakes behind its ports."""
    async with running(sqlite_url) as value:
        yield value


@pytest.fixture
async def store(sql_url: str) -> AsyncIterator[Store]:
    """A migrated store on SQLite, then on PostgreSQL."""
    migrate(sql_url)
    store = Store(sql_url)
    await store.start()
    yield store
    await store.close()


async def queue_case(
    store: Store, at: datetime = START, *, urgent: bool = False, contact: bool = True,
    ref: str | None = None, cause: Cause = Cause.ALL_DECLINED,
) -> str:  # fmt: skip
    ref = ref or new_reference()
    await case_queued(
        store,
        CaseQueued(
            reference=ref, urgent=urgent, stage="after_liquidation", region="75", department="33",
            needs=["mentoring", "new_business"], cause=cause,
            tried=[
                TriedAssociation(association_id="60000-rebonds", outcome="declined", reason="no_capacity",
                                 comment="Plus de parrain disponible en Gironde"),
                TriedAssociation(association_id="second-souffle", outcome="expired"),
            ],
            contact=CallbackContact(first_name="Claire", phone="0612345678", preferred_channel="phone")
            if contact else None,
            at=at,
        ),
    )  # fmt: skip
    return ref


async def offer(
    store: Store, association: str = "60000-rebonds", department: str | None = "33", *,
    at: datetime = START, respond_by: datetime | None = None, urgent: bool = False,
    first_name: str = "Claire", ref: str | None = None, referral_id: str | None = None,
) -> tuple[str, str]:  # fmt: skip
    """A referral in `association`'s inbox; (referral_id, reference)."""
    ref = ref or new_reference()
    referral_id = referral_id or str(uuid.uuid4())
    region = {"33": "75", "69": "84", "75": "11"}.get(department or "", "75")
    await referral_offered(
        store,
        ReferralOffered(
            referral_id=referral_id, reference=ref, association_id=association, urgent=urgent,
            stage="after_liquidation", region=region, department=department,
            needs=["mentoring"], message="Liquidation clôturée en mars, je veux rebondir.",
            contact=CallbackContact(first_name=first_name, email=f"{first_name.lower()}@example.org",
                                    preferred_channel="email"),
            reasons=[{"code": "stage_after_liquidation", "fr": "Vous êtes après une liquidation.",
                      "en": "You are after a liquidation."}],
            offered_at=at, respond_by=respond_by or at + timedelta(days=10),
        ),
    )  # fmt: skip
    return referral_id, ref
