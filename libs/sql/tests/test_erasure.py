"""Tombstone keys, and the lock that makes an erasure and an effect on one reference take turns
(SQLite and PostgreSQL)."""

import asyncio
import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, MetaData, String

from rebond_sql import Database
from rebond_sql.erasure import (
    erased_among,
    lock_references,
    reference_digest,
    tombstone_table,
    tombstones_of,
)
from rebond_sql.testing import waits_for

from .conftest import notes, texts

REFERENCE, OTHER = "RB-7K3M-Q9XA-2DFE-W8NB", "RB-0000-0000-0000-0001"


def test_the_tombstone_key_is_the_plain_sha256_of_the_reference() -> None:
    """Anyone holding the reference can compute it; it is 64 hexadecimal characters."""
    digest = reference_digest(REFERENCE)
    assert digest == hashlib.sha256(REFERENCE.encode()).hexdigest() != reference_digest(OTHER)
    assert len(digest) == 64 and REFERENCE not in digest


async def test_tombstones_are_found_by_reference(database: Database) -> None:
    """A store's tombstones, keyed by digest, are looked up by the references themselves."""
    tombstones = tombstone_table(MetaData(), "tombstones", Column("note", String(8)))
    await database.run(lambda c: tombstones.create(c))
    await database.run(
        lambda c: c.execute(tombstones.insert().values(
            reference_sha256=reference_digest(OTHER), erased_at=datetime.now(UTC)
        ))
    )  # fmt: skip
    assert list(tombstones.c.keys()) == ["reference_sha256", "note", "erased_at"]
    found = await database.run(lambda c: tombstones_of(c, tombstones, [REFERENCE, OTHER, ""]))
    assert list(found) == [OTHER]
    assert await database.run(lambda c: erased_among(c, tombstones, [REFERENCE])) == set()


async def _lock_then_read(database: Database, references: list[str], *, erasing: bool) -> list[str]:
    async with database.transaction() as transaction:
        await transaction.run(lambda c: lock_references(c, references, erasing=erasing))
        return await transaction.run(texts)


@pytest.mark.parametrize(("first", "second"), [(False, True), (True, False)])
async def test_an_erasure_and_an_effect_on_one_reference_take_turns(
    database: Database, first: bool, second: bool
) -> None:
    """Whichever of an effect (shared) and an erasure (exclusive) locks the reference second
    waits until the first has committed, then reads everything the first wrote."""
    read = await waits_for(
        database,
        [
            lambda c: lock_references(c, [OTHER, REFERENCE], erasing=first),
            lambda c: c.execute(notes.insert().values(text="first")),
        ],
        _lock_then_read(database, [REFERENCE], erasing=second),
    )
    assert read == ["first"]


@pytest.mark.parametrize("sql_url", ["postgresql"], indirect=True)
async def test_effects_and_other_references_do_not_wait(database: Database) -> None:
    """PostgreSQL: two effects on one reference share its lock, and an erasure of another
    reference does not wait for them (SQLite runs one transaction at a time anyway)."""
    async with database.transaction() as transaction:
        await transaction.run(lambda c: lock_references(c, [REFERENCE], erasing=False))
        shared = _lock_then_read(database, [REFERENCE], erasing=False)
        assert await asyncio.wait_for(shared, 5) == []
        elsewhere = _lock_then_read(database, [OTHER], erasing=True)
        assert await asyncio.wait_for(elsewhere, 5) == []
