"""The status store behaves the same on SQLite, PostgreSQL, and the in-memory fake."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from rebond_intake.store import SqlStatusStore, Submission
from rebond_intake.timeline import Record

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
    store = SqlStatusStore(url)
    await store.start()
    await store.start()  # creating the tables twice is harmless
    try:
        yield store
    finally:
        await store.close()


def submission(key: str | None, body_hash: str | None = "h1") -> Submission:
    return Submission(
        reference=f"RB-{uuid.uuid4().hex[:4].upper()}-0000-0000-0000",
        received_at=T0,
        event_id=str(uuid.uuid4()),
        idempotency_key=key,
        body_hash=body_hash if key else None,
        acknowledged=False,
    )


async def test_claim_returns_the_first_submission_of_a_key(any_store) -> None:
    """A second claim with the same idempotency key gets the first one back, unchanged,
    and leaves the first claim's secret hash in place."""
    first = await any_store.claim(submission("key-1"), "a" * 64)
    second = await any_store.claim(submission("key-1", body_hash="h2"), "b" * 64)
    assert second.reference == first.reference and second.body_hash == "h1"
    assert second.event_id == first.event_id and second.received_at == T0
    assert await any_store.secret_hash(first.reference) == "a" * 64


async def test_claim_keeps_the_secret_hash_with_the_submission(any_store) -> None:
    """One claim keeps both the submission and its erasure secret's hash."""
    claimed = await any_store.claim(submission(None), "c" * 64)
    assert await any_store.submission(claimed.reference) == claimed
    assert await any_store.secret_hash(claimed.reference) == "c" * 64


async def test_release_forgets_the_submission_and_its_secret(any_store) -> None:
    """A released claim leaves neither its row nor its secret hash; others are untouched."""
    gone = await any_store.claim(submission(None), "d" * 64)
    kept = await any_store.claim(submission(None), "e" * 64)
    await any_store.release(gone.reference)
    assert await any_store.submission(gone.reference) is None
    assert await any_store.secret_hash(gone.reference) is None
    assert await any_store.secret_hash(kept.reference) == "e" * 64


async def test_submissions_without_key_are_all_kept(any_store) -> None:
    """Submissions without a key never collide with each other."""
    a = await any_store.claim(submission(None), "a" * 64)
    b = await any_store.claim(submission(None), "b" * 64)
    assert a.reference != b.reference
    assert await any_store.submission(a.reference) is not None
    assert await any_store.submission(b.reference) is not None


async def test_acknowledge_marks_the_submission(any_store) -> None:
    """A submission is acknowledged only once Kafka had it."""
    claimed = await any_store.claim(submission("key-ack"), "a" * 64)
    assert not (await any_store.submission(claimed.reference)).acknowledged
    await any_store.acknowledge(claimed.reference)
    kept = await any_store.submission(claimed.reference)
    assert kept.acknowledged and kept.received_at == T0


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
    """A reference never seen has no submission and no records."""
    assert await any_store.submission("RB-ZZZZ-0000-0000-0000") is None
    assert await any_store.records("RB-ZZZZ-0000-0000-0000") == []
