"""Migration 0004 on a store kept by the previous version: every time is the same instant, read
back aware; the messages not yet published wait in the shared outbox, in order; the links in
people's mailboxes still belong to their registration."""

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, text

from rebond_events.domain import link_generation
from rebond_events.store import MIGRATIONS, migrate
from rebond_events.tables import OUTBOX, conferences, registrations
from rebond_sql.migrations import downgrade, sync_url, upgrade

#: Naive UTC, as the store kept times before 0004.
T = datetime(2027, 1, 14, 17, 30, 0, 123456)
LATER = datetime(2027, 1, 14, 19, 30)
PARIS_SESSIONS = (
    "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone TO %L', current_database(), "
    "'Europe/Paris'); END $$"
)


def _old_store(url: str) -> None:
    """A store at 0003: a conference, a registration, two messages sent and two waiting. On
    PostgreSQL its sessions speak Paris time (as a server set up in France may), so a time
    read in the session's zone instead of UTC would show."""
    upgrade(url, MIGRATIONS, "0003")
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text(PARIS_SESSIONS))
            connection.execute(
                text(
                    "INSERT INTO events (id, organiser, title, description, kind, starts_at, "
                    "ends_at, venue_address, city, department, region, capacity, status, version, "
                    "created_at, updated_at) VALUES ('e1', 'o', 't', '', 'conference', :t, :later, "
                    "'a', 'c', '33', '75', 10, 'scheduled', 1, :t, :t)"
                ),
                {"t": T, "later": LATER},
            )
            connection.execute(
                text(
                    "INSERT INTO registrations (id, event_id, name, email, email_digest, consent, "
                    "locale, status, queued_at, created_at, updated_at, link_sent_at) VALUES "
                    "('r1', 'e1', 'N', 'n@example.org', 'd', true, 'fr', 'confirmed', :t, :t, :t, "
                    "NULL)"
                ),
                {"t": T},
            )
            for n, (key, sent) in enumerate(
                [("e1", T), ("e1", None), ("RB-A", T), ("RB-A", None)], start=1
            ):
                headers = {"ce_id": f"id-{n}", "ce_correlationid": f"c-{n}"}
                connection.execute(
                    text(
                        "INSERT INTO outbox (event_id, topic, key, value, headers, correlation_id, "
                        "created_at, sent_at) VALUES (:id, 'conferences.events', :key, :value, "
                        ":headers, :c, :t, :sent)"
                    ),
                    {"id": f"id-{n}", "key": key.encode(), "value": f"v{n}".encode(),
                     "headers": json.dumps(headers), "c": f"c-{n}", "t": T, "sent": sent},
                )  # fmt: skip
    finally:
        engine.dispose()


def _rows(url: str, table: Any) -> list[Any]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            return list(connection.execute(table.select()))
    finally:
        engine.dispose()


def test_times_and_unsent_messages_survive_the_migration(sql_url: str) -> None:
    """Naive UTC times come back as the same instants, aware; unsent messages move to
    `events_outbox` in order (sent ones are not kept); a link's generation is unchanged."""
    _old_store(sql_url)
    migrate(sql_url)
    [conference] = _rows(sql_url, conferences)
    assert conference.starts_at == T.replace(tzinfo=UTC)
    assert conference.ends_at == LATER.replace(tzinfo=UTC)
    [registration] = _rows(sql_url, registrations)
    assert registration.queued_at == T.replace(tzinfo=UTC)
    assert link_generation(registration.queued_at) == T.isoformat()  # as the links were signed
    pending = _rows(sql_url, OUTBOX.table)
    assert [(m.subject, m.key, bytes(m.value), m.headers["ce_id"]) for m in pending] == [
        ("e1", "e1", b"v2", "id-2"),
        ("RB-A", "RB-A", b"v4", "id-4"),
    ]
    assert all(m.created_at == T.replace(tzinfo=UTC) for m in pending)


def test_the_migration_can_be_undone(sql_url: str) -> None:
    """Back to 0003: the same naive UTC times, and the unsent messages in the old outbox."""
    _old_store(sql_url)
    migrate(sql_url)
    downgrade(sql_url, MIGRATIONS, "0003")
    engine = create_engine(sync_url(sql_url))
    try:
        with engine.connect() as connection:
            starts_at = connection.execute(text("SELECT starts_at FROM events")).scalar_one()
            outbox = connection.execute(
                text("SELECT event_id, key, correlation_id FROM outbox ORDER BY seq")
            ).all()
    finally:
        engine.dispose()
    assert (
        starts_at if isinstance(starts_at, datetime) else datetime.fromisoformat(starts_at)
    ) == T
    assert [(e, bytes(k), c) for e, k, c in outbox] == [
        ("id-2", b"e1", "c-2"),
        ("id-4", b"RB-A", "c-4"),
    ]
