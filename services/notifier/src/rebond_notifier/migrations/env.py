"""Alembic environment of the delivery log: `rebond_sql.migrations.run` with its tables.

Revisions are written by hand in `versions/` (the schema of the day frozen in each), applied by
`rebond_notifier.store.migrate`: at start (`NOTIFIER_MIGRATE_ON_START`) and by
`python -m rebond_notifier migrate`."""

from rebond_notifier.store import metadata
from rebond_sql.migrations import run

run(metadata)
