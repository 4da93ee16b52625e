"""Alembic environment of the console's store: `rebond_sql.migrations` runs it (`store.migrate`)."""

from rebond_coordination.tables import metadata
from rebond_sql.migrations import run

run(metadata)
