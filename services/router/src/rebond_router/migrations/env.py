"""Alembic environment of the router's store: `rebond_sql.migrations.run` with its tables
(`rebond_router.store.migrate` applies the migrations)."""

from rebond_router.store import metadata
from rebond_sql.migrations import run

run(metadata)
