"""Erasure and anonymisation of the events store (SQLite and PostgreSQL, controlled clock)."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from rebond_contracts.payloads import InvitationContactV1
from rebond_contracts.topics import INVITATIONS
from rebond_events.models import EventIn, RegistrationIn
from rebond_events.privacy import ANONYMOUS_NAME, anonymise, erase
from rebond_events.service import Conferences
from rebond_events.store import InvitationRow, OutboxRow, RegistrationRow, build_engine, migrate

REFERENCE = "RB-7K3M-Q9XA-2DFE-W8NB"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Engine]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else sqlite_url
    migrate(url)
    engine = build_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def conferences(engine: Engine, clock: Clock) -> Conferences:
    return Conferences(
        engine, signing_secret="s" * 40, public_base_url="http://127.0.0.1", clock=clock
    )


def _count(engine: Engine, model: Any, *where: Any) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _invite(conferences: Conferences) -> None:
    contact = InvitationContactV1(
        first_name="Claire", email="claire.martin@example.org", region="75", department="33"
    )
    assert conferences.invite(REFERENCE, REFERENCE, contact) is True


def test_erasure_deletes_the_invitations_of_the_reference(
    conferences: Conferences, engine: Engine, event_body: Callable[..., dict[str, Any]]
) -> None:
    """Erased: no invitation row and no outbox row carrying the person's name and e-mail."""
    conferences.create_event("apesa", EventIn.model_validate(event_body()))
    _invite(conferences)
    assert _count(engine, InvitationRow, InvitationRow.reference == REFERENCE) == 1

    assert erase(engine, REFERENCE) == 1

    assert _count(engine, InvitationRow, InvitationRow.reference == REFERENCE) == 0
    assert _count(engine, OutboxRow, OutboxRow.topic == INVITATIONS.name) == 0
    assert erase(engine, REFERENCE) == 0


def test_registrations_are_anonymised_only_once_the_event_is_past_retention(
    conferences: Conferences,
    engine: Engine,
    clock: Clock,
    event_body: Callable[..., dict[str, Any]],
) -> None:
    """Name and e-mail stay until the event ended + retention, then are replaced; seats stay."""
    event = conferences.create_event("apesa", EventIn.model_validate(event_body()))
    conferences.register(
        event.id, RegistrationIn(name="Claire Martin", email="claire@example.org", consent=True)
    )
    _invite(conferences)
    retention = timedelta(days=30)

    early = anonymise(engine, event.ends_at + timedelta(days=29), retention)
    assert early.registrations == 0
    assert _count(engine, RegistrationRow, RegistrationRow.name == "Claire Martin") == 1

    late = anonymise(engine, event.ends_at + timedelta(days=31), retention)

    assert late.registrations == 1 and late.invitations == 1
    with Session(engine) as session:
        [row] = session.scalars(select(RegistrationRow)).all()
    assert row.name == ANONYMOUS_NAME and "claire" not in row.email
    assert conferences.get_event(event.id).model_dump()["id"] == event.id
    assert anonymise(engine, event.ends_at + timedelta(days=31), retention).registrations == 0
