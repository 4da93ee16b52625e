"""Alembic environment: migrations run against the URL set by `rebond_events.store.migrate`."""

from alembic import context

from rebond_events.store import Base, build_engine

config = context.config
url = config.get_main_option("sqlalchemy.url") or "sqlite:///.run/events.db"


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = build_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection, target_metadata=Base.metadata, render_as_batch=True
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run()
