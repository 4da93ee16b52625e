"""Migration 0003 on a store with registrations: each gets the digest of its person; two rows
that the new rule counts as one person both stay (nobody loses a seat)."""

from datetime import datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from rebond_events.domain import email_digest
from rebond_events.store import MIGRATIONS
from rebond_sql.migrations import sync_url, upgrade

T = datetime(2027, 1, 1, 12)


def test_existing_registrations_get_their_person_digest(sql_url: str) -> None:
    """claire@ and claire+x@ registered before 0003 both keep their seat; later ones are one."""
    upgrade(sql_url, MIGRATIONS, "0002")
    engine = create_engine(sync_url(sql_url))
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO events (id, organiser, title, description, kind, starts_at, "
                    "ends_at, venue_address, city, department, region, capacity, status, version, "
                    "created_at, updated_at) VALUES ('e1', 'o', 't', '', 'conference', :t, :t, "
                    "'a', 'c', '33', '75', 10, 'scheduled', 1, :t, :t)"
                ),
                {"t": T},
            )
            for seq, email in enumerate(
                ["claire@example.org", "claire+x@example.org", "bob@example.org"]
            ):
                connection.execute(
                    text(
                        "INSERT INTO registrations (id, event_id, name, email, consent, locale, "
                        "status, queued_at, created_at, updated_at) VALUES (:id, 'e1', 'N', "
                        ":email, true, 'fr', 'confirmed', :t, :t, :t)"
                    ),
                    {"id": f"r{seq}", "email": email, "t": T},
                )
        upgrade(sql_url, MIGRATIONS, "0003")
        with engine.begin() as connection:
            rows = dict(
                connection.execute(text("SELECT id, email_digest FROM registrations")).all()
            )
        assert rows["r0"] == email_digest("claire@example.org")
        assert rows["r2"] == email_digest("bob@example.org")
        assert rows["r1"] not in (rows["r0"], rows["r2"])  # kept, under its stored address
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO registrations (id, event_id, name, email, email_digest, consent, "
                    "locale, status, queued_at, created_at, updated_at) VALUES ('r9', 'e1', 'N', "
                    "'bob+y@example.org', :digest, true, 'fr', 'confirmed', :t, :t, :t)"
                ),
                {"digest": email_digest("bob+y@example.org"), "t": T},
            )
    finally:
        engine.dispose()
