"""Alembic environment of the router's store: `rebond_router.store.migrate` sets the URL."""

from rebond_router.store import metadata
from rebond_sql.migrations import run_migrations

run_migrations(metadata)
