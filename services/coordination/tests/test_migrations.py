"""The Alembic migrations make exactly the schema the code's tables describe, on SQLite and
PostgreSQL, and running them again changes nothing."""

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pydantic import TypeAdapter
from sqlalchemy import create_engine, select

from rebond_coordination.ports import DirectoryOverride, OutboundMessage, OutcomeRecorded
from rebond_coordination.store import migrate
from rebond_coordination.tables import metadata, outbox, overrides

from .conftest import running

pytestmark = pytest.mark.real_migrations  # what they test is the migrations themselves

MESSAGES: TypeAdapter[OutboundMessage] = TypeAdapter(OutboundMessage)


def test_the_migrations_match_the_tables(sql_url: str) -> None:
    """No difference between the migrated database and `tables.metadata`; a second run is a
    no-op."""
    migrate(sql_url)
    migrate(sql_url)
    engine = create_engine(sql_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert differences == []


async def test_the_service_starts_on_a_sqlite_file_whose_folder_does_not_exist_yet(
    tmp_path: Path,
) -> None:
    """The default `.run/coordination.sqlite3` on a fresh clone: the folder is made, the
    migrations run, the store answers."""
    async with running(f"sqlite:///{tmp_path / 'not' / 'yet' / 'there.sqlite3'}") as console:
        assert (await console.client().get("/readyz")).json() == {"store": "ready"}


def test_overrides_and_outcomes_left_unsent_are_reshaped_for_their_events(sql_url: str) -> None:
    """An override and an outcome written to the outbox before they had readers still go out:
    the migration gives the override who asked for it and the outcome its day, so the relay
    reads them as today's messages (one it could not read would hold back every later one)."""
    migrate(sql_url, "0001")
    at = "2026-12-01T10:00:00+00:00"
    old_override = {"kind": "override", "message_id": "o-1", "at": at,
                    "association_id": "re-creer", "paused": True, "weekly_capacity": None,
                    "response_deadline_days": None, "note": ""}  # fmt: skip
    old_outcome = {"kind": "outcome", "message_id": "c-1", "at": at, "referral_id": "r-1",
                   "reference": "RB-AAAA-BBBB-CCCC-DDDD", "association_id": "60000-rebonds",
                   "outcome": "unreachable", "contacted_on": None}  # fmt: skip
    engine = create_engine(sql_url)
    try:
        with engine.begin() as connection:
            connection.execute(overrides.insert().values(
                id="o-1", association_id="re-creer", paused=True, note="",
                requested_by="user-7", requested_at=datetime(2026, 12, 1, 10, tzinfo=UTC),
            ))  # fmt: skip
            for payload in (old_override, old_outcome):
                connection.execute(outbox.insert().values(
                    message_id=payload["message_id"], kind=payload["kind"], payload=payload,
                    created_at=datetime(2026, 12, 1, 10, tzinfo=UTC), attempts=0,
                ))  # fmt: skip
        migrate(sql_url)
        with engine.connect() as connection:
            payloads = connection.execute(select(outbox.c.payload).order_by(outbox.c.seq))
            override, outcome = (MESSAGES.validate_python(p) for (p,) in payloads)
    finally:
        engine.dispose()
    assert isinstance(override, DirectoryOverride) and override.set_by == "user-7"
    assert isinstance(outcome, OutcomeRecorded) and outcome.on == date(2026, 12, 1)
