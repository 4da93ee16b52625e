"""The policy preview end to end over HTTP (issue 21): the console's `HttpPreview` against the
router's app served by uvicorn on a real store holding decisions the router made, and the
console's preview page (itself served) showing the router's answer as a table and sentences.
Kafka plays no part in a preview, so neither process is given a broker."""

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import SecretStr

from rebond_contracts.payloads import QuestionnaireCompletedV1
from rebond_contracts.preview import DEVELOPMENT_PREVIEW_TOKEN, Move, PreviewResult
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_contracts.topics import QUESTIONNAIRES
from rebond_coordination.__main__ import add_user
from rebond_coordination.app import build as build_console
from rebond_coordination.clients import HttpPreview
from rebond_coordination.fakes import FakeEvents, FakeMailer, FakeOutbound
from rebond_coordination.ports import PreviewRejected, PreviewUnavailable
from rebond_coordination.settings import CoordinationSettings
from rebond_router.app import create_app as router_app
from rebond_router.directory import DEFAULT_PATH, load_directory
from rebond_router.lifecycle import Router
from rebond_router.settings import RouterSettings
from rebond_router.store import Store, migrate
from rebond_sql.outbox import Message
from rebond_sql.testing import acknowledged
from rebond_testing.pages import form_csrf
from rebond_testing.ports import free_port
from rebond_testing.serving import served

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
#: How many people the seeded router oriented to 60 000 rebonds (Claire's situation).
PEOPLE = 5
COORDINATOR = "cora@rebond.test"
PASSWORD = "un mot de passe assez long pour le test"


async def _acknowledged(_message: Message) -> "asyncio.Future[None]":
    """Kafka stand-in for the router's outbox: every output acknowledged at once."""
    return acknowledged()


async def seed(url: str) -> None:
    """`PEOPLE` questionnaires like the example, decided by the router on its store."""
    migrate(url)
    store = Store.from_url(url)
    await store.start()
    try:
        router = Router(
            store, store.relay(_acknowledged, lambda: NOW), load_directory(), lambda: NOW
        )
        for n in range(PEOPLE):
            reference = f"RB-PPPP-0000-0000-000{n}"
            payload = {
                "reference": reference,
                "received_at": NOW,
                "questionnaire": EXAMPLE_QUESTIONNAIRE,
            }
            await router.on_questionnaire(
                QUESTIONNAIRES.envelope(
                    QuestionnaireCompletedV1.model_validate(payload), subject=reference,
                    correlationid=reference, id=f"preview-{n}",
                )
            )  # fmt: skip
    finally:
        await store.close()


def paused_sixty() -> str:
    raw = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    raw["version"] = "candidate-paused"
    next(a for a in raw["associations"] if a["id"] == "60000-rebonds")["paused"] = True
    return yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The router's app (as `python -m rebond_router` builds it) over HTTP on a seeded store."""
    folder = tmp_path_factory.mktemp("router")
    url = f"sqlite+aiosqlite:///{folder / 'router.sqlite3'}"
    asyncio.run(seed(url))
    settings = RouterSettings(
        environment="test", database_url=url, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}"
    )
    with served(router_app(settings, clock=lambda: NOW + timedelta(hours=1))) as base:
        yield base


async def ask(
    base: str, text: str, token: str = DEVELOPMENT_PREVIEW_TOKEN, wait_s: float = 30
) -> PreviewResult:
    async with httpx.AsyncClient(base_url=base, timeout=wait_s) as client:
        return await HttpPreview(client, SecretStr(token)).preview(text)


async def test_the_client_reads_the_routers_matrix(router: str) -> None:
    """A paused 60 000 rebonds: the router's answer, parsed by the client, moves its people to
    Second Souffle."""
    result = await ask(router, paused_sixty())
    assert result.after_version == "candidate-paused"
    assert result.moves == [Move(before="60000-rebonds", after="second-souffle", count=PEOPLE)]


async def test_a_refusal_names_the_association_and_field_and_an_outage_is_unavailable(
    router: str,
) -> None:
    """422 is `PreviewRejected` (association, field); a wrong token, a router down or silent
    (past the client's timeout) is `PreviewUnavailable`, never an exception the page does not
    expect."""
    bad = paused_sixty().replace("weekly_capacity: 12", "weekly_capacity: -1")
    with pytest.raises(PreviewRejected) as refused:
        await ask(router, bad)
    assert (refused.value.association, refused.value.field) == ("60000-rebonds", "weekly_capacity")
    with pytest.raises(PreviewUnavailable):
        await ask(router, paused_sixty(), token="not-the-token")
    with pytest.raises(PreviewUnavailable):
        await ask(f"http://127.0.0.1:{free_port()}", paused_sixty())
    with socket.create_server(("127.0.0.1", 0)) as silent, pytest.raises(PreviewUnavailable):
        # Connected (the kernel's backlog accepts) but never answered: the client's timeout.
        await ask(f"http://127.0.0.1:{silent.getsockname()[1]}", paused_sixty(), wait_s=0.5)


@pytest.fixture
def console(router: str, tmp_path: Path) -> Iterator[str]:
    """The console, configured as `make run` does (COORDINATION_ROUTER_URL and the shared
    development token), with a coordinator account; over HTTP."""
    port = free_port()
    settings = CoordinationSettings(
        environment="test", database_url=SecretStr(f"sqlite:///{tmp_path / 'console.sqlite3'}"),
        public_url=f"http://127.0.0.1:{port}", router_url=router,
    )  # fmt: skip
    assert add_user([COORDINATOR, "--name", "Cora", "--role", "coordinator"], settings,
                    read_password=lambda _prompt: PASSWORD) == 0  # fmt: skip
    app = build_console(settings, outbound=FakeOutbound(), mailer=FakeMailer(), events=FakeEvents())
    with served(app.web) as base:
        yield base


def test_the_preview_page_shows_the_routers_shifts(console: str) -> None:
    """Signed in, a coordinator pastes the candidate: the page shows "5 personnes iraient à
    Second Souffle au lieu de 60 000 rebonds" and the matrix; an invalid one names the field."""
    with httpx.Client(base_url=console, timeout=60) as browser:
        form = browser.get("/connexion").text
        signed = browser.post(
            "/connexion", data={"email": COORDINATOR, "password": PASSWORD, "csrf": form_csrf(form)}
        )
        assert signed.status_code == 303
        token = form_csrf(browser.get("/apercu").text)
        page = browser.post("/apercu", data={"csrf": token, "directory": paused_sixty()})
        assert page.status_code == 200
        assert (
            f"{PEOPLE} personnes iraient à Second Souffle au lieu de 60 000 rebonds." in page.text
        )
        assert "<caption>Matrice" in page.text and "candidate-paused" in page.text
        bad = paused_sixty().replace("weekly_capacity: 12", "weekly_capacity: -1")
        refused = browser.post("/apercu", data={"csrf": token, "directory": bad})
        assert refused.status_code == 422
        assert "association « 60000-rebonds » champ « weekly_capacity »" in refused.text
