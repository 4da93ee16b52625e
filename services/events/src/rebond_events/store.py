"""The store: SQLAlchemy 2 tables, the engine, and Alembic migrations.

SQLite (the default) and PostgreSQL are both supported. Seat counting must hold under
concurrency, so every write transaction serialises on its conference:

* PostgreSQL: `SELECT … FOR UPDATE` on the event row (READ COMMITTED: the counts read after the
  lock see every registration committed before it).
* SQLite: it ignores `FOR UPDATE`, so each transaction starts with `BEGIN IMMEDIATE`, taking the
  database's write lock up front (waiting up to `busy_timeout`); two transactions can never both
  read the same count and then both write.
"""

from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Base(DeclarativeBase):
    pass


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organiser: Mapped[str] = mapped_column(String(60), index=True)
    title: Mapped[str] = mapped_column(String(150))
    description: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))
    #: UTC, without tzinfo.
    starts_at: Mapped[datetime] = mapped_column(DateTime())
    ends_at: Mapped[datetime] = mapped_column(DateTime())
    venue_address: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    department: Mapped[str] = mapped_column(String(3))
    region: Mapped[str] = mapped_column(String(5))
    online_url: Mapped[str | None] = mapped_column(String(500))
    capacity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime())
    updated_at: Mapped[datetime] = mapped_column(DateTime())

    __table_args__ = (
        Index("ix_events_listing", "status", "starts_at"),
        Index("ix_events_region", "region", "department"),
    )


class RegistrationRow(Base):
    __tablename__ = "registrations"

    #: Insertion order; ties of `queued_at` are broken by it.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"))
    name: Mapped[str] = mapped_column(String(120))
    #: As the person typed it: where their e-mails go.
    email: Mapped[str] = mapped_column(String(254))
    #: `domain.email_digest`: one registration per person (variants of one mailbox included)
    #: and conference.
    email_digest: Mapped[str] = mapped_column(String(64))
    consent: Mapped[bool] = mapped_column(Boolean)
    locale: Mapped[str] = mapped_column(String(5))
    status: Mapped[str] = mapped_column(String(12))
    #: When the person joined the waitlist (its order) or registered.
    queued_at: Mapped[datetime] = mapped_column(DateTime())
    created_at: Mapped[datetime] = mapped_column(DateTime())
    updated_at: Mapped[datetime] = mapped_column(DateTime())
    #: When an e-mail carrying the cancellation link was last asked for (a repeat registration
    #: re-sends it at most every `domain.RESEND_AFTER`).
    link_sent_at: Mapped[datetime | None] = mapped_column(DateTime())

    __table_args__ = (
        UniqueConstraint("event_id", "email_digest", name="uq_registrations_event_person"),
        Index("ix_registrations_event_status", "event_id", "status"),
    )


class InvitationRow(Base):
    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"))
    #: sha256 of the normalised e-mail: enough to invite once, without keeping the address.
    email_digest: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(DateTime())

    __table_args__ = (
        UniqueConstraint("event_id", "email_digest", name="uq_invitations_event_person"),
    )


class ErasureRow(Base):
    """A person who came through the questionnaire asked for erasure: the tombstone of their
    reference, its SHA-256 only (`rebond_sql.erasure`). Their invitations and the outbox rows
    that carried them are deleted in the same transaction (`rebond_events.privacy.erase`), and
    `Conferences.invite` reads it, under the reference's lock, before inviting anyone."""

    __tablename__ = "erasures"

    reference_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime())


class OutboxRow(Base):
    """Events to publish, written in the same transaction as the change they announce."""

    __tablename__ = "outbox"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    topic: Mapped[str] = mapped_column(String(120))
    key: Mapped[bytes] = mapped_column(LargeBinary)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    #: JSON object of the CloudEvents headers.
    headers: Mapped[str] = mapped_column(Text)
    correlation_id: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(DateTime())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(), index=True)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def build_engine(url: str, **kwargs: Any) -> Engine:
    """An engine whose transactions are safe for seat counting (see the module docstring)."""
    if not is_sqlite(url):
        return create_engine(url, pool_pre_ping=True, **kwargs)
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, say when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if ":memory:" not in url:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # no fsync per commit; WAL stays safe
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def migrate(url: str) -> None:
    """Bring the database at `url` to the latest Alembic revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")
