"""Alembic environment: migrations run against the URL set by `rebond_coordination.store.migrate`."""

from alembic import context
from sqlalchemy import create_engine

from rebond_coordination.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or "sqlite:///.run/coordination.sqlite3"


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url.replace("sqlite+aiosqlite", "sqlite"))
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run()
