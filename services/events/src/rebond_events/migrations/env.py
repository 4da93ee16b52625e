"""Alembic environment of the events store: `rebond_sql.migrations` runs it (`store.migrate`)."""

from rebond_events.tables import metadata
from rebond_sql.migrations import run

run(metadata)
