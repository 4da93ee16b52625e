"""What every store shares about erased references: how one is remembered, and how an erasure
and any effect on the same reference take turns.

**The tombstone key** is the plain SHA-256 of the reference (`reference_digest`), not the
reference: once a person asked for erasure, a store keeps no more than that this reference
existed and was erased, and a tombstone read on its own (a backup, a dump) gives no reference
back to look up elsewhere (on a Kafka topic, in a log, in another store). A key (an HMAC) would
add nothing here: a reference is 80 random bits (`RB-XXXX-XXXX-XXXX-XXXX`), far out of reach of
an enumeration, so without the reference nobody can tell whose tombstone a digest is; and a key
would be one more secret that every service must hold forever, whose loss would silently turn
every tombstone into noise and let an erased person be routed and invited again after a replay.
Whoever holds the reference can check it against the tombstones; that is the point of them.

**Serialisation.** A store checks the tombstone of a reference in the same transaction as the
effect the check guards (routing it, inviting the person, keeping a status, publishing a
referral), and an erasure writes the tombstone and removes what was kept in one transaction.
That alone is not enough under PostgreSQL's READ COMMITTED: an effect could read "no tombstone",
the erasure commit and remove what it finds, and the effect then commit what the erasure did
not see. So both take a transaction-level advisory lock on the reference first
(`lock_references`): effects a shared one (they do not wait on each other), the erasure an
exclusive one. Whichever comes second waits for the first to commit, and then sees all of it:
each statement of a READ COMMITTED transaction reads what was committed before it started. On
SQLite there is nothing to take: its transactions are serialisable (one writer at a time;
within a process `rebond_sql.Database` runs them one after the other, and the events store
begins each with `BEGIN IMMEDIATE`).
"""

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Row, String, Table, select, text

from rebond_sql.types import UTCDateTime


def tombstone_table(metadata: MetaData, name: str, *columns: Column[Any]) -> Table:
    """A store's tombstones, `name` on `metadata`: one row per erased reference, keyed by its
    digest (`reference_digest`), with when it was erased; `columns` (none of them personal)
    stand between the two."""
    return Table(
        name,
        metadata,
        Column("reference_sha256", String(64), primary_key=True),
        *columns,
        Column("erased_at", UTCDateTime, nullable=False),
    )


def reference_digest(reference: str) -> str:
    """The tombstone key of `reference`: its SHA-256, 64 lower-case hexadecimal characters."""
    return hashlib.sha256(reference.encode("utf-8")).hexdigest()


def _lock_key(reference: str) -> int:
    """The advisory lock of `reference`: a signed 64-bit integer from its digest. Two references
    sharing one (2^-64) only wait for each other; neither sees the other's data."""
    return int.from_bytes(hashlib.sha256(reference.encode("utf-8")).digest()[:8], signed=True)


_SHARED = text("SELECT pg_advisory_xact_lock_shared(key) FROM unnest(CAST(:keys AS bigint[])) key")
_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(key) FROM unnest(CAST(:keys AS bigint[])) key")


def lock_references(connection: Connection, references: Iterable[str], *, erasing: bool) -> None:
    """Take, until the transaction ends, the lock of each of `references` (see the module's
    docstring): exclusive when `erasing`, else shared. Keys are taken in ascending order (an
    array is unnested in its order), so that two transactions locking several never wait for
    each other in a cycle. Does nothing on SQLite."""
    if connection.dialect.name != "postgresql":
        return
    keys = sorted({_lock_key(reference) for reference in references})
    if keys:
        connection.execute(_EXCLUSIVE if erasing else _SHARED, {"keys": keys})


def tombstones_of(
    connection: Connection, tombstones: Table, references: Iterable[str]
) -> dict[str, Row[Any]]:
    """The rows of `tombstones` (a store's table keyed by `reference_sha256`) of those of
    `references` that were erased, by reference."""
    by_digest = {reference_digest(reference): reference for reference in references if reference}
    if not by_digest:
        return {}
    query = select(tombstones).where(tombstones.c.reference_sha256.in_(list(by_digest)))
    return {by_digest[row.reference_sha256]: row for row in connection.execute(query)}


def erased_among(connection: Connection, tombstones: Table, references: Iterable[str]) -> set[str]:
    """Those of `references` that have a row in `tombstones`."""
    return set(tombstones_of(connection, tombstones, references))
