"""The status store behaves the same on SQLite, PostgreSQL, and the in-memory fake."""

import asyncio
import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from rebond_contracts.payloads import new_reference
from rebond_intake.store import SqlStatusStore, Submission, erasures, metadata, migrate
from rebond_intake.timeline import Record
from rebond_sql.erasure import lock_references, reference_digest
from rebond_sql.testing import rows_of, waits_for

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["fake", "sqlite", "postgresql"])
async def any_store(request, tmp_path, fake_store_class) -> AsyncIterator[object]:
    """Each store under test, started on an empty database."""
    if request.param == "fake":
        yield fake_store_class()
        return
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'intake.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    migrate(url)
    store = SqlStatusStore(url)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


def submission(key: str, body_hash: str = "h1") -> Submission:
    """A new submission under `key`, with a reference of the real format: its 80 random bits
    (4 hex digits collided about once in 40 runs of the 60 claims below, and a colliding
    reference, not the key, decided which claim won)."""
    return Submission(
        reference=new_reference(),
        received_at=T0,
        event_id=str(uuid.uuid4()),
        idempotency_key=key,
        body_hash=body_hash,
    )


async def test_claim_returns_the_first_submission_of_a_key(any_store) -> None:
    """A second claim with the same idempotency key gets the first one back, unchanged."""
    first = await any_store.claim(submission("key-1"))
    second = await any_store.claim(submission("key-1", body_hash="h2"))
    assert second == first and second.body_hash == "h1" and second.received_at == T0


@pytest.mark.parametrize("any_store", ["sqlite", "postgresql"], indirect=True)
async def test_concurrent_claims_share_one_transaction(any_store, monkeypatch) -> None:
    """Claims arriving together are written together (a group commit): 60 claims of 20 keys
    take one or two transactions, each key's first claim wins, and every claim of a key gets
    that one back."""
    transactions = 0
    run = any_store._run

    async def counted(work):
        nonlocal transactions
        transactions += 1
        return await run(work)

    monkeypatch.setattr(any_store, "_run", counted)
    wanted = [submission(f"key-{i % 20}") for i in range(60)]
    got = await asyncio.gather(*(any_store.claim(w) for w in wanted))
    assert got[:20] == wanted[:20]
    assert all(g == wanted[i % 20] for i, g in enumerate(got))
    assert 1 <= transactions <= 2


async def test_claims_of_other_keys_are_all_kept(any_store) -> None:
    """Each key claims its own submission; none keeps an erasure secret's hash."""
    a = await any_store.claim(wanted_a := submission("key-a"))
    b = await any_store.claim(wanted_b := submission("key-b"))
    assert (a, b) == (wanted_a, wanted_b)
    assert await any_store.secret_hash(a.reference) is None


async def test_add_many_keeps_new_records_once(any_store) -> None:
    """A batch keeps each event id once: those kept before and repeats in the batch are
    skipped, and the new ones are named."""
    before = Record("ev-1", "RB-AAAA-0000-0000-0000", "received", T0, {})
    await any_store.add(before)
    batch = [
        before,
        Record("ev-2", "RB-AAAA-0000-0000-0001", "received", T0, {}),
        Record("ev-2", "RB-AAAA-0000-0000-0001", "received", T0, {}),
        Record("ev-3", "RB-AAAA-0000-0000-0002", "received", T0 + timedelta(seconds=1), {}),
    ]
    assert await any_store.add_many(batch) == {"ev-2", "ev-3"}
    assert await any_store.add_many(batch) == set()
    assert await any_store.add_many([]) == set()
    assert [r.event_id for r in await any_store.records("RB-AAAA-0000-0000-0001")] == ["ev-2"]
    [third] = await any_store.records("RB-AAAA-0000-0000-0002")
    assert third.kind == "received" and third.at == T0 + timedelta(seconds=1)


async def test_records_are_deduplicated_by_event_id(any_store) -> None:
    """Adding the same event twice keeps it once; records come back with aware times."""
    record = Record("ev-1", "RB-AAAA-0000-0000-0000", "status", T0, {"status": "offered"})
    other = Record("ev-2", "RB-AAAA-0000-0000-0000", "status", T0 + timedelta(hours=1), {})
    elsewhere = Record("ev-3", "RB-BBBB-0000-0000-0000", "status", T0, {})
    assert await any_store.add(record) is True
    assert await any_store.add(record) is False
    await any_store.add(other)
    await any_store.add(elsewhere)
    kept = sorted(await any_store.records("RB-AAAA-0000-0000-0000"), key=lambda r: r.event_id)
    assert [r.event_id for r in kept] == ["ev-1", "ev-2"]
    assert kept[0].detail == {"status": "offered"} and kept[0].at == T0
    assert kept[1].at.tzinfo is not None


async def test_unknown_reference_has_nothing(any_store) -> None:
    """A reference never seen has no records and no secret hash."""
    assert await any_store.secret_hash("RB-ZZZZ-0000-0000-0000") is None
    assert await any_store.records("RB-ZZZZ-0000-0000-0000") == []


REF = "RB-7K3M-Q9XA-2DFE-W8NB"
SAID_DISTRESS = {
    "primary": "apesa",
    "attempt": 1,
    "urgent": True,
    "reasons": [{"code": "distress", "fr": "vous avez dit être en détresse", "en": "distress"}],
}


def _journey(reference: str = REF) -> list[Record]:
    return [
        Record(f"{reference}-received", reference, "received", T0, {}),
        Record(f"{reference}-decision", reference, "decision", T0 + timedelta(seconds=2),
               SAID_DISTRESS),
        Record(f"{reference}-offered", reference, "status", T0 + timedelta(seconds=3),
               {"status": "offered", "association_id": "apesa"}),
    ]  # fmt: skip


async def test_erasure_keeps_only_that_the_reference_was_received_and_erased(any_store) -> None:
    """Erased: the decision, its distress reason and every status are gone, the keyed
    submission's row too; what is left is "received" (first time known) and "erased"; asking
    again changes nothing; another reference keeps all it had."""
    other = "RB-0THE-R000-0000-0001"
    claimed = await any_store.claim(dataclasses.replace(submission("key-e"), reference=REF))
    await any_store.add_many(_journey() + _journey(other))
    erased_at = T0 + timedelta(minutes=5)

    await any_store.erase(REF, erased_at)
    await any_store.erase(REF, erased_at + timedelta(minutes=1))

    kept = await any_store.records(REF)
    assert [(r.kind, r.at, r.detail) for r in kept] == [
        ("received", T0, {}), ("erasure", erased_at, {})
    ]  # fmt: skip
    assert len(await any_store.records(other)) == 3
    again = dataclasses.replace(submission("key-e"), reference="RB-NEW0-0000-0000-0000")
    assert await any_store.claim(again) != claimed  # the key went with the submission


async def test_records_read_after_the_erasure_are_dropped(any_store) -> None:
    """Erasure first, then the submission and its decision are read (a lagging consumer, a
    replayed record): nothing of them is kept; the submission's time becomes "received"."""
    await any_store.erase(REF, T0 + timedelta(minutes=5))
    assert [r.kind for r in await any_store.records(REF)] == ["erasure"]

    assert await any_store.add_many(_journey()) == set()

    kept = await any_store.records(REF)
    assert [(r.kind, r.at) for r in kept] == [
        ("received", T0), ("erasure", T0 + timedelta(minutes=5))
    ]  # fmt: skip


@pytest.mark.parametrize("any_store", ["sqlite", "postgresql"], indirect=True)
async def test_a_status_read_during_an_erasure_waits_for_it_and_is_dropped(any_store) -> None:
    """A status batch that reaches the store while an erasure of its reference is under way
    waits for the erasure's commit, then sees its tombstone: the record is not kept."""
    tombstone = erasures.insert().values(
        reference_sha256=reference_digest(REF), received_at=T0, erased_at=T0
    )
    erasure = [lambda c: lock_references(c, [REF], erasing=True), lambda c: c.execute(tombstone)]
    assert await waits_for(any_store.database, erasure, any_store.add_many(_journey()[1:])) == set()
    assert [r.kind for r in await any_store.records(REF)] == ["received", "erasure"]


@pytest.mark.parametrize("any_store", ["sqlite", "postgresql"], indirect=True)
async def test_the_tombstone_holds_the_reference_hash_only(any_store) -> None:
    """In the SQL stores an erased reference leaves one row, keyed by its SHA-256: no status
    event, no submission row, and the reference itself nowhere."""
    await any_store.claim(dataclasses.replace(submission("key-t"), reference=REF))
    await any_store.add_many(_journey())
    await any_store.erase(REF, T0 + timedelta(minutes=5))

    tables = await rows_of(any_store.database, metadata)
    assert tables["intake_status_events"] == [] and tables["intake_submissions"] == []
    [(key, *_times)] = tables["intake_erasures"]
    assert key == hashlib.sha256(REF.encode()).hexdigest()
    assert REF not in repr(tables)
