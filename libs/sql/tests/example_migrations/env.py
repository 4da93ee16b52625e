"""The example store's Alembic environment: one call, as in every service (its tables are the
test's: nothing here generates migrations from them)."""

import sqlalchemy as sa

from rebond_sql.migrations import run_migrations

run_migrations(sa.MetaData())
