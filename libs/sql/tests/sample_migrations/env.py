"""The sample store's Alembic environment: one call, as in every service."""

import sqlalchemy as sa

from rebond_sql.migrations import run

run(sa.MetaData())
