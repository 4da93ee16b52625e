"""`UTCDateTime` keeps instants: aware in, aware UTC out, ordered and compared as instants, on
SQLite and PostgreSQL alike; a naive datetime is refused."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, Table, select
from sqlalchemy.exc import StatementError

from rebond_sql import Database
from rebond_sql.testing import tables_of
from rebond_sql.types import UTCDateTime

metadata = MetaData()
moments = Table(
    "moments", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime)
)
PARIS_WINTER = timezone(timedelta(hours=1))
NEW_YORK = timezone(timedelta(hours=-5))


@pytest.fixture
async def database(sql_url: str) -> AsyncIterator[Database]:
    async with tables_of(sql_url, metadata, "types") as database:
        yield database


def _insert(*values: datetime | None) -> object:
    def work(connection: Connection) -> None:
        for number, value in enumerate(values, start=1):
            connection.execute(moments.insert().values(id=number, at=value))

    return work


async def test_an_aware_datetime_comes_back_as_the_same_instant_in_utc(database: Database) -> None:
    """A Paris time is read back as the same instant, with tzinfo UTC."""
    paris = datetime(2026, 12, 6, 9, 30, 15, 123456, tzinfo=PARIS_WINTER)
    await database.run(_insert(paris))
    (read,) = await database.run(lambda c: list(c.execute(select(moments.c.at)).scalars()))
    assert read == paris
    assert read.tzinfo is UTC
    assert read.hour == 8 and read.microsecond == 123456


async def test_order_and_comparisons_follow_the_instants_not_the_written_zones(
    database: Database,
) -> None:
    """Rows are ordered and filtered by instant whatever zone each was given in."""
    early_new_york = datetime(2026, 12, 6, 3, 0, tzinfo=NEW_YORK)  # 08:00 UTC
    later_utc = datetime(2026, 12, 6, 8, 30, tzinfo=UTC)
    latest_paris = datetime(2026, 12, 6, 10, 0, tzinfo=PARIS_WINTER)  # 09:00 UTC
    await database.run(_insert(latest_paris, early_new_york, later_utc))
    ordered = await database.run(
        lambda c: list(c.execute(select(moments.c.id).order_by(moments.c.at)).scalars())
    )
    assert ordered == [2, 3, 1]
    cutoff = datetime(2026, 12, 6, 9, 15, tzinfo=PARIS_WINTER)  # 08:15 UTC
    after = await database.run(
        lambda c: list(c.execute(select(moments.c.id).where(moments.c.at > cutoff)).scalars())
    )
    assert sorted(after) == [1, 3]


async def test_null_stays_null(database: Database) -> None:
    """A missing instant is stored and read as None."""
    await database.run(_insert(None))
    assert await database.run(lambda c: c.execute(select(moments.c.at)).scalar_one()) is None


async def test_a_naive_datetime_is_refused(database: Database) -> None:
    """Binding a datetime without zone raises instead of guessing one."""
    with pytest.raises(StatementError, match="naive"):
        await database.run(_insert(datetime(2026, 12, 6, 9, 0)))
