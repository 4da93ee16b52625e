"""A database on SQLite and on PostgreSQL with one small table, for the tests of `rebond_sql`."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, select

from rebond_sql import Database
from rebond_sql.testing import tables_of

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("text", String))


def texts(connection: Connection) -> list[str]:
    return list(connection.execute(select(notes.c.text).order_by(notes.c.id)).scalars())


@pytest.fixture
async def database(sql_url: str) -> AsyncIterator[Database]:
    async with tables_of(sql_url, metadata, "test") as database:
        yield database
