"""Erasure and anonymisation of the events store (SQLite and PostgreSQL, controlled clock)."""

import hashlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
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
from rebond_events.store import (
    Base,
    ErasureRow,
    InvitationRow,
    OutboxRow,
    RegistrationRow,
    build_engine,
    migrate,
)
from rebond_sql.erasure import lock_references, reference_digest

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


def _tables(engine: Engine) -> str:
    with engine.connect() as connection:
        return repr(
            {t.name: connection.execute(select(t)).all() for t in Base.metadata.sorted_tables}
        )


def test_erasure_deletes_the_invitations_of_the_reference(
    conferences: Conferences, engine: Engine, event_body: Callable[..., dict[str, Any]]
) -> None:
    """Erased: no invitation row and no outbox row carrying the person's name and e-mail, and
    the reference nowhere; its tombstone is its SHA-256."""
    conferences.create_event("apesa", EventIn.model_validate(event_body()))
    _invite(conferences)
    assert _count(engine, InvitationRow, InvitationRow.reference == REFERENCE) == 1

    assert erase(engine, REFERENCE) == 1

    assert _count(engine, InvitationRow, InvitationRow.reference == REFERENCE) == 0
    assert _count(engine, OutboxRow, OutboxRow.topic == INVITATIONS.name) == 0
    assert erase(engine, REFERENCE) == 0
    tables = _tables(engine)
    assert REFERENCE not in tables and "claire" not in tables.lower()
    assert hashlib.sha256(REFERENCE.encode()).hexdigest() in tables


def test_a_decision_read_after_the_erasure_invites_no_one(
    conferences: Conferences, engine: Engine, event_body: Callable[..., dict[str, Any]]
) -> None:
    """The erasure is read first (a lagging consumer, a replayed dead letter): the person's
    decision then invites no one and leaves nothing behind."""
    conferences.create_event("apesa", EventIn.model_validate(event_body()))
    erase(engine, REFERENCE)
    contact = InvitationContactV1(
        first_name="Claire", email="claire.martin@example.org", region="75", department="33"
    )

    assert conferences.invite(REFERENCE, REFERENCE, contact) is False

    assert (
        _count(engine, InvitationRow) == 0
        and _count(engine, OutboxRow, OutboxRow.topic == INVITATIONS.name) == 0
    )


def test_an_invitation_during_an_erasure_waits_for_it_and_invites_no_one(
    conferences: Conferences, engine: Engine, event_body: Callable[..., dict[str, Any]]
) -> None:
    """A decision read while the person's erasure is being committed waits for the commit,
    then sees the tombstone: no invitation."""
    conferences.create_event("apesa", EventIn.model_validate(event_body()))
    holding, release = threading.Event(), threading.Event()

    def erasure_under_way() -> None:
        with Session(engine) as session, session.begin():
            lock_references(session.connection(), [REFERENCE], erasing=True)
            session.add(
                ErasureRow(
                    reference_sha256=reference_digest(REFERENCE), erased_at=datetime(2026, 11, 27)
                )
            )
            session.flush()
            holding.set()
            release.wait(10)

    contact = InvitationContactV1(
        first_name="Claire", email="claire.martin@example.org", region="75", department="33"
    )
    with ThreadPoolExecutor(2) as pool:
        erasing = pool.submit(erasure_under_way)
        assert holding.wait(10)
        inviting = pool.submit(conferences.invite, REFERENCE, REFERENCE, contact)
        done, _ = wait([inviting], timeout=0.5)
        assert not done, "the person was invited while their erasure was under way"
        release.set()
        erasing.result(10)
        assert inviting.result(10) is False
    assert _count(engine, InvitationRow) == 0


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
