"""The example store's Alembic environment: one call, as in every service."""

import sqlalchemy as sa

from rebond_sql.migrations import run_migrations

metadata = sa.MetaData()
sa.Table(
    "notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("text", sa.String(200), nullable=False),
)

run_migrations(metadata)
