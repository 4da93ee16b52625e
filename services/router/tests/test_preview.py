"""The policy preview (issue 21): the replay itself (pure), and `POST /internal/preview` over
real HTTP on a real store, seeded by the router's own decisions."""

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import QuestionnaireCompletedV1
from rebond_contracts.preview import (
    DEVELOPMENT_PREVIEW_TOKEN,
    MAX_DIRECTORY_BYTES,
    PREVIEW_PATH,
    Move,
    PreviewResult,
)
from rebond_contracts.questionnaire import CompanySize, Need, Stage
from rebond_contracts.topics import QUESTIONNAIRES
from rebond_router.app import create_app
from rebond_router.directory import DEFAULT_PATH, Directory, load_directory, parse_directory
from rebond_router.preview import replay
from rebond_router.referral import Track
from rebond_router.scoring import Features
from rebond_router.settings import RouterSettings
from rebond_router.store import Replayable, Store
from rebond_testing.ports import free_port
from rebond_testing.serving import served

from .conftest import NOW, Clock, FakeOutputs, anonymous, open_store, router_on, submitted

SIXTY = AssociationId.SOIXANTE_MILLE_REBONDS.value
SECOND = AssociationId.SECOND_SOUFFLE.value
SOS = AssociationId.SOS_ENTREPRENEUR.value
AUTH = {"Authorization": f"Bearer {DEVELOPMENT_PREVIEW_TOKEN}"}


def candidate(change: Any = None, version: str = "candidate-1") -> str:
    """The production directory as YAML, with `version` and `change(raw)` applied."""
    raw = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    raw["version"] = version
    if change is not None:
        change(raw)
    return yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)


def entry(raw: dict[str, Any], association: str) -> dict[str, Any]:
    return next(a for a in raw["associations"] if a["id"] == association)


def paused(association: str) -> Any:
    def change(raw: dict[str, Any]) -> None:
        entry(raw, association)["paused"] = True

    return change


# --- the replay, pure ------------------------------------------------------------------------


def decision(at: datetime, shared: bool = True, **changes: Any) -> Replayable:
    features = Features(
        Stage.AFTER_LIQUIDATION, "75", (Need.MENTORING, Need.NEW_BUSINESS), CompanySize.MICRO,
        False,
    )  # fmt: skip
    features = Features(**{**features.__dict__, **changes})
    return Replayable(Track.MAIN, at, features, shared)


def test_the_same_rules_move_nobody(directory: Directory) -> None:
    """Replayed with the rules in force on both sides, everyone stays where they were."""
    result = replay([decision(NOW), decision(NOW)], directory, directory, 4)
    assert result.moves == [Move(before=SIXTY, after=SIXTY, count=2)]


def test_a_hard_capacity_counts_the_consenting_only_week_by_week(directory: Directory) -> None:
    """With 60 000 rebonds at 2 a week (hard), the third consenting person of a week goes to
    Second Souffle; a person who shared no contact takes no place; a new week starts afresh."""
    tight = parse_directory(
        candidate(lambda raw: entry(raw, SIXTY).update(weekly_capacity=2)), "candidate"
    )
    week = [decision(NOW), decision(NOW, shared=False), decision(NOW), decision(NOW)]
    later = decision(NOW + timedelta(days=7))
    result = replay([*week, later], directory, tight, 4)
    assert result.moves == [
        Move(before=SIXTY, after=SIXTY, count=4),
        Move(before=SIXTY, after=SECOND, count=1),
    ]


def test_the_distress_track_goes_to_the_queue_when_its_association_pauses(
    directory: Directory,
) -> None:
    """A distress-track decision replays among distress associations only: APESA paused sends
    it to the human queue (None), never to the main track's associations."""
    apesa = AssociationId.APESA.value
    closed = parse_directory(candidate(paused(apesa)), "candidate")
    distressed = Replayable(Track.DISTRESS, NOW, decision(NOW, distress=True).features, True)
    result = replay([distressed], directory, closed, 4)
    assert result.moves == [Move(before=apesa, after=None, count=1)]


# --- the endpoint, over HTTP, on the router's store ----------------------------------------

PEOPLE = {
    # Claire's situation (after a liquidation, a mentor): 60 000 rebonds today.
    "after": [submitted(f"RB-AAAA-0000-0000-000{n}") for n in range(4)]
    + [submitted(f"RB-BBBB-0000-0000-000{n}", **anonymous()) for n in range(2)],
    # An SME in trouble before any procedure, with an urgent legal question: SOS Entrepreneur.
    "before": [
        submitted(
            f"RB-CCCC-0000-0000-000{n}",
            situation__stage="pre_procedure",
            situation__company_size="10-49",
            needs=["urgent_financial_legal"],
        )
        for n in range(3)
    ],
}
OLD = submitted("RB-DDDD-0000-0000-0001")  # decided 6 weeks ago: outside the window


def event(person: QuestionnaireCompletedV1) -> Envelope[QuestionnaireCompletedV1]:
    return QUESTIONNAIRES.envelope(
        person, subject=person.reference, correlationid=person.reference,
        id=f"event-{person.reference}",
    )  # fmt: skip


async def seed(url: str, directory: Directory) -> None:
    """The seeded decisions, made by the router itself on its store."""
    store = await open_store(url)
    try:
        clock = Clock(NOW - timedelta(weeks=6))
        router = router_on(store, directory, FakeOutputs(), clock)
        await router.on_questionnaire(event(OLD))
        clock.now = NOW
        for person in [*PEOPLE["after"], *PEOPLE["before"]]:
            await router.on_questionnaire(event(person))
    finally:
        await store.close()


@pytest.fixture
def router_url(tmp_path: Path, directory: Directory) -> Iterator[str]:
    """The router's app (`create_app`, as `python -m rebond_router` serves it) over HTTP, on a
    store holding the seeded decisions; Kafka is away (the preview does not need it)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'router.sqlite3'}"
    asyncio.run(seed(url, directory))
    settings = RouterSettings(
        environment="test", database_url=url,
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
    )  # fmt: skip
    with served(create_app(settings, clock=lambda: NOW + timedelta(days=1))) as base:
        yield base


def ask(url: str, body: str | bytes, headers: dict[str, str] | None = AUTH) -> httpx.Response:
    return httpx.post(f"{url}{PREVIEW_PATH}", content=body, headers=headers, timeout=30)


def test_without_the_token_or_with_another_the_preview_is_refused(router_url: str) -> None:
    """No Authorization, a wrong token, another scheme: 401 with `WWW-Authenticate: Bearer`."""
    for headers in (
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": f"Basic {DEVELOPMENT_PREVIEW_TOKEN}"},
    ):
        refused = ask(router_url, candidate(), headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"] == "Bearer"


def test_an_invalid_directory_is_refused_naming_the_association_and_the_field(
    router_url: str,
) -> None:
    """A negative capacity: 422 naming 60000-rebonds and weekly_capacity, as at start-up; a
    body that is not YAML, not UTF-8 or too large: a 4xx naming it, never a 500."""
    bad = ask(router_url, candidate(lambda raw: entry(raw, SIXTY).update(weekly_capacity=-3)))
    assert bad.status_code == 422
    problem = bad.json()
    assert (problem["association"], problem["field"]) == (SIXTY, "weekly_capacity")
    assert "greater than or equal to 0" in problem["message"]
    assert ask(router_url, "version: [").status_code == 422
    assert ask(router_url, b"\xff\xfe").json()["field"] == "body"
    assert ask(router_url, "#" * (MAX_DIRECTORY_BYTES + 1)).status_code == 413


def test_pausing_an_association_shows_where_its_people_would_go(router_url: str) -> None:
    """On the seeded decisions of the last 4 weeks, 60 000 rebonds paused: its 6 people
    (consenting or not) would go to Second Souffle, SOS Entrepreneur's 3 stay; the decision
    from 6 weeks ago is not replayed."""
    answer = ask(router_url, candidate(paused(SIXTY)))
    assert answer.status_code == 200
    result = PreviewResult.model_validate(answer.json())
    assert (result.before_version, result.after_version, result.weeks) == (
        load_directory(DEFAULT_PATH).version, "candidate-1", 4,
    )  # fmt: skip
    assert result.moves == [
        Move(before=SIXTY, after=SECOND, count=6),
        Move(before=SOS, after=SOS, count=3),
    ]


def test_changing_stages_moves_only_the_people_of_those_stages(router_url: str) -> None:
    """SOS Entrepreneur no longer serving `pre_procedure`: its 3 people would go elsewhere,
    60 000 rebonds keeps its 6."""
    result = PreviewResult.model_validate(
        ask(
            router_url,
            candidate(lambda raw: entry(raw, SOS).update(stages=["amicable_procedure"])),
        ).json()
    )
    moved = {(m.before, m.after): m.count for m in result.moves}
    assert moved[(SIXTY, SIXTY)] == 6
    assert sum(c for (b, a), c in moved.items() if b == SOS and a != SOS) == 3


def test_the_answer_holds_counts_and_nothing_about_anyone(router_url: str) -> None:
    """No reference, first name, e-mail, message, department or region of a seeded person in
    the answer: only association ids, versions and counts."""
    text = ask(router_url, candidate(paused(SIXTY))).text
    person = PEOPLE["after"][0].questionnaire
    assert person.contact is not None and person.message
    for secret in (
        *(p.reference for people in PEOPLE.values() for p in people),
        person.contact.first_name,
        str(person.contact.email),
        person.message,
        "33",
        '"75"',
    ):
        assert secret not in text, secret


# --- what the store keeps for the replay (SQLite and PostgreSQL) ---------------------------


async def test_the_store_keeps_what_scoring_read_and_nothing_else(
    store: Store, directory: Directory
) -> None:
    """Each first decision keeps its time, track and features; a person who shared no contact
    is replayed without taking a place; decisions before the window are left out."""
    router = router_on(store, directory, FakeOutputs(), Clock(NOW - timedelta(weeks=6)))
    await router.on_questionnaire(event(OLD))
    router.clock = Clock(NOW)
    await router.on_questionnaire(event(PEOPLE["after"][0]))
    await router.on_questionnaire(event(PEOPLE["after"][-1]))  # shares no contact
    kept = await store.replayable(NOW - timedelta(weeks=4))
    claire = Features(
        Stage.AFTER_LIQUIDATION, "75", (Need.MENTORING, Need.NEW_BUSINESS), CompanySize.MICRO,
        False,
    )  # fmt: skip
    assert kept == [
        Replayable(Track.MAIN, NOW, claire, True),
        Replayable(Track.MAIN, NOW, claire, False),
    ]
