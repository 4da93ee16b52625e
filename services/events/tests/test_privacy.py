"""Erasure and anonymisation of the events store (SQLite and PostgreSQL, controlled clock)."""

import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import Connection, func, select

from rebond_contracts.payloads import InvitationContactV1
from rebond_contracts.topics import INVITATIONS
from rebond_events.app import build
from rebond_events.conferences import Conferences
from rebond_events.models import EventIn, RegistrationIn
from rebond_events.privacy import ANONYMOUS_NAME, anonymise
from rebond_events.store import migrate
from rebond_events.tables import OUTBOX, erasures, invitations, metadata, registrations
from rebond_sql import Database
from rebond_sql.erasure import lock_references, reference_digest
from rebond_sql.testing import rows_of, waits_for

from .conftest import FakeSink, settings_for
from .fakes import FrozenClock

REFERENCE = "RB-7K3M-Q9XA-2DFE-W8NB"
CONTACT = InvitationContactV1(
    first_name="Claire", email="claire.martin@example.org", region="75", department="33"
)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC))


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
async def conferences(
    sql_url: str, clock: FrozenClock, sink: FakeSink
) -> AsyncIterator[Conferences]:
    """The service's use cases on a migrated store (each database), Kafka a fake that keeps
    what is published, so the outbox only holds what could not go."""
    migrate(sql_url)
    events = build(settings_for(sql_url), send=sink.send, clock=clock)
    yield events.conferences
    await events.store.close()


def database(conferences: Conferences) -> Database:
    return conferences.store.database


async def _count(conferences: Conferences, table: Any, *where: Any) -> int:
    def count(connection: Connection) -> int:
        return int(connection.scalar(select(func.count()).select_from(table).where(*where)) or 0)

    return await database(conferences).run(count)


async def test_erasure_deletes_the_invitations_of_the_reference(
    conferences: Conferences, sink: FakeSink, event_body: Callable[..., dict[str, Any]]
) -> None:
    """Erased: no invitation row and no outbox row carrying the person's name and e-mail (its
    publication had failed), and the reference nowhere; its tombstone is its SHA-256."""
    await conferences.create_event("apesa", EventIn.model_validate(event_body()))
    sink.down = True
    with pytest.raises(KafkaConnectionError):  # the invitee would be read again
        await conferences.invite(REFERENCE, REFERENCE, CONTACT)
    assert await _count(conferences, invitations, invitations.c.reference == REFERENCE) == 1
    assert await _count(conferences, OUTBOX.table, OUTBOX.table.c.topic == INVITATIONS.name) == 1

    assert await conferences.erase(REFERENCE) == 1

    assert await _count(conferences, invitations) == 0
    assert await _count(conferences, OUTBOX.table, OUTBOX.table.c.topic == INVITATIONS.name) == 0
    assert await conferences.erase(REFERENCE) == 0
    tables = repr(await rows_of(database(conferences), metadata))
    assert REFERENCE not in tables and "claire" not in tables.lower()
    assert hashlib.sha256(REFERENCE.encode()).hexdigest() in tables


async def test_a_decision_read_after_the_erasure_invites_no_one(
    conferences: Conferences, event_body: Callable[..., dict[str, Any]]
) -> None:
    """The erasure is read first (a lagging consumer, a replayed dead letter): the person's
    decision then invites no one and leaves nothing behind."""
    await conferences.create_event("apesa", EventIn.model_validate(event_body()))
    await conferences.erase(REFERENCE)

    assert await conferences.invite(REFERENCE, REFERENCE, CONTACT) is False

    assert await _count(conferences, invitations) == 0
    assert await _count(conferences, OUTBOX.table, OUTBOX.table.c.topic == INVITATIONS.name) == 0


async def test_an_invitation_during_an_erasure_waits_for_it_and_invites_no_one(
    conferences: Conferences, event_body: Callable[..., dict[str, Any]], clock: FrozenClock
) -> None:
    """A decision read while the person's erasure is being committed waits for the commit,
    then sees the tombstone: no invitation."""
    await conferences.create_event("apesa", EventIn.model_validate(event_body()))
    tombstone = erasures.insert().values(
        reference_sha256=reference_digest(REFERENCE), erased_at=clock.now
    )
    erasure = [
        partial(lock_references, references=[REFERENCE], erasing=True),
        lambda connection: connection.execute(tombstone),
    ]
    invited = conferences.invite(REFERENCE, REFERENCE, CONTACT)
    assert await waits_for(database(conferences), erasure, invited) is False
    assert await _count(conferences, invitations) == 0


async def test_registrations_are_anonymised_only_once_the_event_is_past_retention(
    conferences: Conferences, event_body: Callable[..., dict[str, Any]]
) -> None:
    """Name and e-mail stay until the event ended + retention, then are replaced; seats stay."""
    event = await conferences.create_event("apesa", EventIn.model_validate(event_body()))
    await conferences.register(
        event.id, RegistrationIn(name="Claire Martin", email="claire@example.org", consent=True)
    )
    assert await conferences.invite(REFERENCE, REFERENCE, CONTACT) is True
    retention = timedelta(days=30)

    async def anonymised_at(now: datetime) -> Any:
        return await database(conferences).run(partial(anonymise, now=now, retention=retention))

    early = await anonymised_at(event.ends_at + timedelta(days=29))
    assert early.registrations == 0
    name = registrations.c.name == "Claire Martin"
    assert await _count(conferences, registrations, name) == 1

    late = await anonymised_at(event.ends_at + timedelta(days=31))

    assert late.registrations == 1 and late.invitations == 1
    [row] = (await rows_of(database(conferences), metadata))["registrations"]
    assert ANONYMOUS_NAME in row and "claire" not in repr(row)
    detail = await conferences.get_event(event.id)
    assert (detail.id, detail.confirmed) == (event.id, 1)
    assert (await anonymised_at(event.ends_at + timedelta(days=31))).registrations == 0
