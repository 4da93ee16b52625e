"""Migration 0003 on a store with registrations: each gets the digest of its person; two rows
that the new rule counts as one person both stay (nobody loses a seat)."""

from datetime import datetime

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from rebond_events.domain import email_digest
from rebond_events.store import MIGRATIONS, build_engine, migrate

T = datetime(2027, 1, 1, 12)


def _upgrade(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, revision)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_existing_registrations_get_their_person_digest(
    request: pytest.FixtureRequest, sqlite_url: str, database: str
) -> None:
    """claire@ and claire+x@ registered before 0003 both keep their seat; later ones are one."""
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else sqlite_url
    _upgrade(url, "0002")
    engine = build_engine(url)
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
        migrate(url)
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
