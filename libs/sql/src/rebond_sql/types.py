"""Column types shared by the stores.

`UTCDateTime`: one way to keep an instant in every store. Python code hands it aware datetimes
and always gets aware UTC datetimes back, on SQLite as on PostgreSQL:

- PostgreSQL stores `timestamp with time zone` (an instant); psycopg returns it in the
  session's zone, which is converted back to UTC on reading.
- SQLite has no date type: SQLAlchemy stores the text of the datetime it is given, and a zone
  written into that text would make equal instants compare unequal (`10:00+02:00` vs
  `08:00+00:00`) and sort wrongly. So the value is converted to UTC and stored without zone
  (`2026-12-06 08:00:00.000000`): every stored value is UTC, text order is time order, and the
  zone is put back on reading.

A naive datetime is refused when bound (`ValueError`): which zone it meant cannot be known, and
guessing is how stores end up with four time representations.
"""

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out, on every database (see the module)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime takes a datetime, not {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("UTCDateTime refuses a naive datetime: give it a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite: stored as UTC without zone (see the module)
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: What a store or a use case asks the time of (tests hand it a fixed or stepping clock).
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Now, aware and in UTC: every service's clock in production."""
    return datetime.now(UTC)
