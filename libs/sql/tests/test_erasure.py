"""Tombstone keys, and the lock that makes an erasure and an effect on one reference take turns
(SQLite and PostgreSQL)."""

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, select

from rebond_sql import Database
from rebond_sql.erasure import lock_references, reference_digest

REFERENCE, OTHER = "RB-7K3M-Q9XA-2DFE-W8NB", "RB-0000-0000-0000-0001"
metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("text", String))


@pytest.fixture
async def database(sql_url: str) -> AsyncIterator[Database]:
    database = Database(sql_url, name="test")
    await database.run(lambda connection: metadata.create_all(connection))
    yield database
    await database.close()


def _texts(connection: Connection) -> list[str]:
    return list(connection.execute(select(notes.c.text).order_by(notes.c.id)).scalars())


def test_the_tombstone_key_is_the_plain_sha256_of_the_reference() -> None:
    """Anyone holding the reference can compute it; it is 64 hexadecimal characters."""
    digest = reference_digest(REFERENCE)
    assert digest == hashlib.sha256(REFERENCE.encode()).hexdigest() != reference_digest(OTHER)
    assert len(digest) == 64 and REFERENCE not in digest


async def _hold(
    database: Database, references: list[str], *, erasing: bool, note: str,
    holding: asyncio.Event, release: asyncio.Event,
) -> None:  # fmt: skip
    async with database.transaction() as transaction:
        await transaction.run(lambda c: lock_references(c, references, erasing=erasing))
        await transaction.run(lambda c: c.execute(notes.insert().values(text=note)))
        holding.set()
        await release.wait()


async def _then_read(database: Database, references: list[str], *, erasing: bool) -> list[str]:
    async with database.transaction() as transaction:
        await transaction.run(lambda c: lock_references(c, references, erasing=erasing))
        return await transaction.run(_texts)


@pytest.mark.parametrize(("first", "second"), [(False, True), (True, False)])
async def test_an_erasure_and_an_effect_on_one_reference_take_turns(
    database: Database, first: bool, second: bool
) -> None:
    """Whichever of an effect (shared) and an erasure (exclusive) locks the reference second
    waits until the first has committed, then reads everything the first wrote."""
    holding, release = asyncio.Event(), asyncio.Event()
    held = asyncio.create_task(
        _hold(database, [OTHER, REFERENCE], erasing=first, note="first",
              holding=holding, release=release)
    )  # fmt: skip
    await holding.wait()
    waiting = asyncio.create_task(_then_read(database, [REFERENCE], erasing=second))
    done, _ = await asyncio.wait([waiting], timeout=0.5)
    assert not done, "the second went ahead while the first still held the reference"
    release.set()
    await held
    assert await asyncio.wait_for(waiting, timeout=10) == ["first"]


@pytest.mark.parametrize("sql_url", ["postgresql"], indirect=True)
async def test_effects_and_other_references_do_not_wait(database: Database) -> None:
    """PostgreSQL: two effects on one reference share its lock, and an erasure of another
    reference does not wait for them (SQLite runs one transaction at a time anyway)."""
    holding, release = asyncio.Event(), asyncio.Event()
    held = asyncio.create_task(
        _hold(database, [REFERENCE], erasing=False, note="effect", holding=holding,
              release=release)
    )  # fmt: skip
    await holding.wait()
    try:
        assert await asyncio.wait_for(_then_read(database, [REFERENCE], erasing=False), 5) == []
        assert await asyncio.wait_for(_then_read(database, [OTHER], erasing=True), 5) == []
    finally:
        release.set()
        await held
