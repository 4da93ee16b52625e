"""Alembic environment of intake's store: the migrations run against the URL
`rebond_intake.store.migrate` gives, with `rebond_intake.store.metadata` as the tables."""

from rebond_intake.store import metadata
from rebond_sql.migrations import run

run(metadata)
