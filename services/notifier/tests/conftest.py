"""Notifier test fixtures: a real SMTP server (aiosmtpd), a real HTTP webhook receiver, and
decisions built from the contracts."""

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    ConferenceKind,
    ConferenceSummaryV1,
    InvitationV1,
    Reason,
    ReferralV1,
    RegistrationChange,
    RegistrationV1,
    RoutingDecisionV1,
)
from rebond_contracts.questionnaire import Contact, Need, PreferredChannel, Stage
from rebond_contracts.topics import DECISIONS
from rebond_notifier.app import Notifier, build
from rebond_notifier.channels import Retry
from rebond_notifier.settings import NotifierSettings
from rebond_notifier.signing import new_webhook_secret
from rebond_notifier.store import DeliveryStore, migrate
from rebond_notifier.templates import Mail
from rebond_testing import free_port, new_reference
from rebond_testing.events import publish_event

#: The tests' zero hour: `at(seconds)` is that many seconds after it.
T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
async def store(sql_url: str) -> AsyncIterator[DeliveryStore]:
    """The delivery log on each database, made by its migrations."""
    migrate(sql_url)
    store = DeliveryStore.from_url(sql_url)
    yield store
    await store.close()


async def sqlite_store(folder: Path) -> DeliveryStore:
    """A migrated delivery log in a SQLite file of `folder`."""
    url = f"sqlite+aiosqlite:///{folder}/log.sqlite3"
    migrate(url)
    return DeliveryStore.from_url(url)


def make_decision(
    association: AssociationId = AssociationId.SOIXANTE_MILLE_REBONDS,
    *,
    reference: str | None = None,
    attempt: int = 1,
    email: str | None = "claire@example.org",
    urgent: bool = False,
) -> RoutingDecisionV1:
    reference = reference or new_reference()
    now = datetime.now(UTC)
    referral = ReferralV1(
        referral_id=uuid.uuid4(),
        reference=reference,
        association_id=association,
        urgent=urgent,
        stage=Stage.AFTER_LIQUIDATION,
        region="75",
        department="33",
        needs=[Need.MENTORING, Need.NEW_BUSINESS],
        contact=Contact(
            first_name="Claire",
            email=email,
            phone=None if email else "06 12 34 56 78",
            preferred_channel=PreferredChannel.EMAIL if email else PreferredChannel.PHONE,
        ),
        message="Liquidation clôturée en mars, je veux relancer une activité.",
        reasons=[
            Reason(code="stage_after_liquidation", fr="vous êtes après une liquidation", en="after")
        ],
        referred_at=now,
        respond_by=now + timedelta(days=10),
    )
    return RoutingDecisionV1(
        decision_id=uuid.uuid4(),
        reference=reference,
        rule_set_version="test",
        primary=association,
        urgent=urgent,
        referral=referral,
        attempt=attempt,
        decided_at=now,
    )


def make_conference(title: str | None = None, **changes: object) -> ConferenceSummaryV1:
    """A conference in Bordeaux on Thursday 14 January 2027, 18:30-20:30 Paris time."""
    event_id = uuid.uuid4()
    paris = timezone(timedelta(hours=1))
    conference = ConferenceSummaryV1(
        event_id=event_id,
        title=title or f"Rebondir après une liquidation {uuid.uuid4().hex[:8]}",
        kind=ConferenceKind.SUCCESS_STORIES,
        starts_at=datetime(2027, 1, 14, 18, 30, tzinfo=paris),
        ends_at=datetime(2027, 1, 14, 20, 30, tzinfo=paris),
        venue_address="12 place de la Bourse",
        city="Bordeaux",
        department="33",
        region="75",
        page_url=f"https://rebond.example.org/evenements/{event_id}",
        ics_url=f"https://rebond.example.org/v1/events/{event_id}/calendar.ics",
    )
    return conference.model_copy(update=changes)


def make_registration(
    change: RegistrationChange = RegistrationChange.CONFIRMED,
    conference: ConferenceSummaryV1 | None = None,
    **changes: object,
) -> RegistrationV1:
    conference = conference or make_conference()
    registration_id = uuid.uuid4()
    active = change != RegistrationChange.CANCELLED
    registration = RegistrationV1(
        registration_id=registration_id,
        event_id=conference.event_id,
        change=change,
        name="Claire Martin",
        email="claire@example.org",
        cancel_url=(
            f"https://rebond.example.org/inscriptions/{registration_id}/annuler?token=t0k3n"
            if active
            else None
        ),
        conference=conference,
        at=datetime.now(UTC),
    )
    return registration.model_copy(update=changes)


def make_invitation(conference: ConferenceSummaryV1 | None = None) -> InvitationV1:
    return InvitationV1(
        invitation_id=uuid.uuid4(),
        reference=new_reference(),
        first_name="Claire",
        email="claire@example.org",
        match="department",
        conference=conference or make_conference(),
        invited_at=datetime.now(UTC),
    )


async def poll_until(done: Callable[[], bool], within_s: float) -> None:
    """Return as soon as `done()` holds, or after `within_s` (the caller asserts)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        if done() or loop.time() > deadline:
            return
        await asyncio.sleep(0.03)


# --- The dispatcher's ports, faked ------------------------------------------------------------


class FakeMailer:
    """Keeps each mail; `before_send` runs first (a slow server, an erasure meanwhile…)."""

    def __init__(self, before_send: Callable[[Mail], Awaitable[None]] | None = None) -> None:
        self.sent: list[Mail] = []
        self.before_send = before_send

    async def send(self, mail: Mail) -> None:
        if self.before_send is not None:
            await self.before_send(mail)
        self.sent.append(mail)


class NoWebhooks:
    """For deliveries that are all e-mails: a webhook would be retried, never sent."""

    async def post(
        self, url: str, secret: bytes, body: bytes, timeout_s: float, delivery_id: str
    ) -> None:
        raise Retry("unused")


# --- SMTP -------------------------------------------------------------------------------------


@dataclass
class MailBox:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    #: The name each message's client gave in EHLO (or HELO).
    client_names: list[str] = field(default_factory=list)
    #: The client's (address, port) of each message: one per connection it came on.
    client_peers: list[tuple[str, int]] = field(default_factory=list)

    def about(self, reference: str) -> list[EmailMessage]:
        return [m for m in self.messages if reference in str(m["Subject"])]

    async def wait_for(
        self, reference: str, count: int, within_s: float = 15
    ) -> list[EmailMessage]:
        deadline = asyncio.get_running_loop().time() + within_s
        while len(self.about(reference)) < count:
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        return self.about(reference)


class CollectMail:
    def __init__(self, box: MailBox) -> None:
        self.box = box

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        raw = envelope.original_content  # type: ignore[attr-defined]
        self.box.messages.append(message_from_bytes(raw, policy=policy.default))  # type: ignore[arg-type]
        self.box.client_names.append(session.host_name)  # type: ignore[attr-defined]
        self.box.client_peers.append(tuple(session.peer))  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[MailBox]:
    """A real SMTP server (aiosmtpd) on loopback, collecting every message."""
    box = MailBox("127.0.0.1", free_port())
    controller = Controller(CollectMail(box), hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


# --- Webhook receiver -------------------------------------------------------------------------


@dataclass
class Hook:
    path: str
    body: bytes
    headers: dict[str, str]
    status: int | None = None


@dataclass
class WebhookReceiver:
    """A real HTTP server; what it answers is scripted per reference.

    `script[reference]` is a list of statuses used in turn (last one repeats); the status
    "hang" holds the request until `release[reference]` is set."""

    url: str
    received: list[Hook] = field(default_factory=list)
    script: dict[str, list[int | str]] = field(default_factory=dict)
    release: dict[str, asyncio.Event] = field(default_factory=dict)
    open_requests: set[str] = field(default_factory=set)

    def about(self, reference: str) -> list[Hook]:
        return [h for h in self.received if reference.encode() in h.body]

    async def wait_for(self, reference: str, count: int, within_s: float = 15) -> list[Hook]:
        await poll_until(lambda: len(self.about(reference)) >= count, within_s)
        return self.about(reference)

    async def __call__(self, scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        reference = json.loads(body).get("subject", "") if body else ""
        hook = Hook(scope["path"], body, {k.decode(): v.decode() for k, v in scope["headers"]})
        self.received.append(hook)
        plan = self.script.get(reference, [200])
        seen = len(self.about(reference)) - 1
        status = plan[min(seen, len(plan) - 1)]
        if status == "hang":
            self.open_requests.add(reference)
            try:
                await self.release.setdefault(reference, asyncio.Event()).wait()
            finally:
                self.open_requests.discard(reference)
            status = 200
        hook.status = int(status)
        await send({"type": "http.response.start", "status": int(status), "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="session")
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    """A real HTTP server on a free loopback port receiving the notifier's webhooks."""
    port = free_port()
    receiver = WebhookReceiver(f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(receiver, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    await poll_until(lambda: server.started, 10)
    try:
        yield receiver
    finally:
        for event in receiver.release.values():
            event.set()
        server.should_exit = True
        await task


#: The webhooks' secret in the notifier's tests on the broker (`hooked_associations`), which
#: the notifier reads from the variable HOOK_SECRET_ENV.
HOOK_SECRET = new_webhook_secret()
HOOK_SECRET_ENV = "NOTIFIER_TEST_HOOK_SECRET"


@pytest.fixture(scope="module")
def hooked_associations(
    webhook_receiver: WebhookReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A module's associations file (`associations_file`), in a folder of its own where its
    notifier keeps its store too: the webhooks go to `webhook_receiver`, signed with
    HOOK_SECRET."""
    path = tmp_path_factory.mktemp("notifier") / "associations.yaml"
    os.environ[HOOK_SECRET_ENV] = HOOK_SECRET
    associations_file(path, webhook_receiver.url, HOOK_SECRET_ENV)
    return path


#: `hooked_settings`: a group's name and changes give a notifier's settings.
HookedSettings = Callable[..., NotifierSettings]


@pytest.fixture(scope="module")
def hooked_settings(
    kafka_bootstrap: str, smtp_server: "MailBox", hooked_associations: Path
) -> HookedSettings:
    """`hooked_settings(group, **changes)`: `notifier_settings` for a module's notifier whose
    associations are `hooked_associations` (webhooks to `webhook_receiver`), its store beside
    that file."""

    def make(group: str, **changes: Any) -> NotifierSettings:
        return notifier_settings(
            kafka_bootstrap, smtp_server, hooked_associations.parent, group,
            associations_file=hooked_associations, **changes,
        )  # fmt: skip

    return make


# --- The notifier as a process ----------------------------------------------------------------

LINK_SECRET = "link-secret-for-tests-" + uuid.uuid4().hex


class NotifierUrl(str):
    """The notifier process's public base URL; `internal` is its operators' port's."""

    internal: str


@pytest.fixture(scope="module")
def notifier_process(
    kafka_bootstrap: str, smtp_server: MailBox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NotifierUrl]:
    """`python -m rebond_notifier` on free ports (public and internal), configured by
    environment only: its public URL, with the internal one as `.internal`."""
    folder = tmp_path_factory.mktemp("notifier-process")
    port, internal_port = free_port(), free_port()
    url = NotifierUrl(f"http://127.0.0.1:{port}")
    url.internal = f"http://127.0.0.1:{internal_port}"
    log = folder / "notifier.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "rebond_notifier"],
        env={
            **os.environ,
            "NOTIFIER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "NOTIFIER_ENVIRONMENT": "test",
            "NOTIFIER_PORT": str(port),
            "NOTIFIER_PUBLIC_BASE_URL": url,
            "NOTIFIER_GROUP_ID": f"test-notifier-{uuid.uuid4().hex[:8]}",
            "NOTIFIER_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'log.sqlite3'}",
            "NOTIFIER_SMTP_HOST": smtp_server.host,
            "NOTIFIER_SMTP_PORT": str(smtp_server.port),
            "NOTIFIER_LINK_SECRET": LINK_SECRET,
            "NOTIFIER_POLL_INTERVAL_S": "0.2",
            "NOTIFIER_INTERNAL_PORT": str(internal_port),
            "NOTIFIER_HSTS_MAX_AGE_S": "31536000",
        },
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"notifier exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"notifier not ready: {log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- Kafka helpers ----------------------------------------------------------------------------


async def send_decision(bootstrap: str, decision: RoutingDecisionV1) -> None:
    """Publish `decision` as the router does: keyed and subject by its reference, its id the
    decision's."""
    event = DECISIONS.envelope(
        decision, subject=decision.reference, correlationid=decision.reference,
        id=str(decision.decision_id),
    )  # fmt: skip
    await publish_event(bootstrap, DECISIONS.name, event, decision.reference)


#: Retries that a test sees through: 3 attempts, 0.2 s then up to 1 s apart.
FAST_RETRIES: dict[str, Any] = {"max_attempts": 3, "retry_base_s": 0.2, "retry_cap_s": 1.0}


def notifier_settings(
    bootstrap: str, smtp: "MailBox", folder: Path, group: str, **changes: Any
) -> NotifierSettings:
    """A test notifier's settings: its own consumer group (`group` and a random suffix) and
    SQLite delivery log in `folder`, mail to `smtp`, the outbox polled every 0.2 s; `changes`
    on top."""
    return NotifierSettings(
        kafka_bootstrap_servers=bootstrap,
        environment="test",
        group_id=f"{group}-{uuid.uuid4().hex[:8]}",
        database_url=f"sqlite+aiosqlite:///{folder / 'log.sqlite3'}",
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        poll_interval_s=0.2,
        **changes,
    )


@asynccontextmanager
async def running(settings: NotifierSettings) -> AsyncIterator[Notifier]:
    """The notifier `build` makes from `settings`, its lifespan started and Kafka connected,
    stopped when the block ends."""
    service = build(settings)
    await service.start()
    try:
        await service.wait_connected()
        yield service
    finally:
        await service.stop()


def associations_file(path, hook_url: str, secret_env: str, slow: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Every association with a test address; all but SOS Entrepreneur with a webhook;
    re-creer with a short webhook timeout."""
    lines = ["associations:"]
    for association in AssociationId:
        lines.append(f"  {association.value}:\n    email: contact@{association.value}.example")
        if association != AssociationId.SOS_ENTREPRENEUR:
            lines.append(f"    webhook_url: {hook_url}/hooks/{association.value}")
            lines.append(f"    webhook_secret: env:{secret_env}")
        if association == AssociationId.RE_CREER:
            lines.append("    webhook_timeout_s: 0.5")
    path.write_text("\n".join(lines) + "\n")
