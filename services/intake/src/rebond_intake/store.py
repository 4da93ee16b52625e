"""Intake's own store: submissions (for idempotency) and the status events it consumed.

No personal data is kept here: references, hashes, statuses, association ids, reason codes and
timestamps only. SQLite by default, PostgreSQL when a `postgresql+psycopg://` URL is given.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    event,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from rebond_intake.timeline import Record


class StoreUnavailable(Exception):
    """The store could not be reached or written: the caller must not claim success."""


@dataclass(frozen=True)
class Submission:
    reference: str
    received_at: datetime
    event_id: str
    idempotency_key: str | None
    body_hash: str | None
    acknowledged: bool


class StatusStore(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def claim(self, submission: Submission) -> Submission:
        """Insert `submission`; when its idempotency key is already known, return that one."""

    async def acknowledge(self, reference: str) -> None: ...
    async def submission(self, reference: str) -> Submission | None: ...
    async def add(self, record: Record) -> bool:
        """Keep one status record; False when its event id was already kept."""

    async def records(self, reference: str) -> list[Record]: ...
    async def set_secret(self, reference: str, secret_hash: str, at: datetime) -> None:
        """Keep (or replace) the hash of the person's erasure secret for `reference`."""

    async def secret_hash(self, reference: str) -> str | None: ...
    async def expire(self, before: datetime) -> int:
        """Drop idempotency keys and body hashes of submissions received before `before`."""


metadata = MetaData()
submissions = Table(
    "intake_submissions",
    metadata,
    Column("reference", String(32), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("idempotency_key", String(255), unique=True, nullable=True),
    Column("body_hash", String(64), nullable=True),
    Column("acknowledged", Boolean, nullable=False, default=False),
)
status_events = Table(
    "intake_status_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("reference", String(32), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("detail", JSON, nullable=False),
)


#: Only a hash of each person's erasure secret (the secret itself is shown once, never kept).
erasure_secrets = Table(
    "intake_erasure_secrets",
    metadata,
    Column("reference", String(32), primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_pragmas(engine: AsyncEngine) -> AsyncEngine:
    """SQLite in WAL mode with synchronous=NORMAL: a commit no longer waits for an fsync (the
    durable record of a submission is Kafka's; a power cut may lose the last few status rows,
    never corrupt the file), and readers no longer block the writer."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


class SqlStatusStore:
    """The SQLAlchemy adapter (async engine)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise StoreUnavailable("store not started")
        return self._engine

    async def start(self) -> None:
        engine = create_async_engine(self._url, pool_pre_ping=True)
        if self._url.startswith("sqlite"):
            _sqlite_pragmas(engine)
        try:
            if self._url.startswith("sqlite") and ":///" in self._url:
                path = self._url.split(":///", 1)[1]
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
            async with engine.begin() as connection:
                await connection.run_sync(metadata.create_all)
        except (SQLAlchemyError, OSError) as error:
            await engine.dispose()
            raise StoreUnavailable(type(error).__name__) from error
        self._engine = engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()

    async def claim(self, submission: Submission) -> Submission:
        row = {
            "reference": submission.reference,
            "received_at": _utc(submission.received_at),
            "event_id": submission.event_id,
            "idempotency_key": submission.idempotency_key,
            "body_hash": submission.body_hash,
            "acknowledged": submission.acknowledged,
        }
        try:
            async with self.engine.begin() as connection:
                await connection.execute(submissions.insert().values(**row))
            return submission
        except IntegrityError:
            if submission.idempotency_key is None:
                raise StoreUnavailable("reference collision") from None
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from error
        existing = await self._one(submissions.c.idempotency_key == submission.idempotency_key)
        if existing is None:  # deleted in between: a plain retry is the honest answer
            raise StoreUnavailable("idempotency key vanished")
        return existing

    async def acknowledge(self, reference: str) -> None:
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    update(submissions)
                    .where(submissions.c.reference == reference)
                    .values(acknowledged=True)
                )
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from error

    async def submission(self, reference: str) -> Submission | None:
        return await self._one(submissions.c.reference == reference)

    async def _one(self, condition: Any) -> Submission | None:
        try:
            async with self.engine.connect() as connection:
                row = (await connection.execute(select(submissions).where(condition))).first()
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from error
        if row is None:
            return None
        return Submission(
            reference=row.reference,
            received_at=_utc(row.received_at),
            event_id=row.event_id,
            idempotency_key=row.idempotency_key,
            body_hash=row.body_hash,
            acknowledged=bool(row.acknowledged),
        )

    async def add(self, record: Record) -> bool:
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    status_events.insert().values(
                        event_id=record.event_id,
                        reference=record.reference,
                        kind=record.kind,
                        at=_utc(record.at),
                        detail=json.loads(json.dumps(record.detail)),
                    )
                )
            return True
        except IntegrityError:
            return False
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from error

    async def records(self, reference: str) -> list[Record]:
        try:
            async with self.engine.connect() as connection:
                rows = (
                    await connection.execute(
                        select(status_events).where(status_events.c.reference == reference)
                    )
                ).all()
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from error
        return [
            Record(
                event_id=row.event_id,
                reference=row.reference,
                kind=row.kind,
                at=_utc(row.at),
                detail=dict(row.detail),
            )
            for row in rows
        ]

    async def set_secret(self, reference: str, secret_hash: str, at: datetime) -> None:
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    erasure_secrets.delete().where(erasure_secrets.c.reference == reference)
                )
                await connection.execute(
                    erasure_secrets.insert().values(
                        reference=reference, secret_hash=secret_hash, created_at=_utc(at)
                    )
                )
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from error

    async def secret_hash(self, reference: str) -> str | None:
        try:
            async with self.engine.connect() as connection:
                value = (
                    await connection.execute(
                        select(erasure_secrets.c.secret_hash).where(
                            erasure_secrets.c.reference == reference
                        )
                    )
                ).scalar()
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from error
        return str(value) if value is not None else None

    async def expire(self, before: datetime) -> int:
        """Idempotency rows simply expire: a retry after this long is a new submission."""
        try:
            async with self.engine.begin() as connection:
                result = await connection.execute(
                    update(submissions)
                    .where(
                        submissions.c.received_at < _utc(before),
                        submissions.c.idempotency_key.is_not(None),
                    )
                    .values(idempotency_key=None, body_hash=None)
                )
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from error
        return int(result.rowcount or 0)
