"""The delivery log's Alembic migrations on SQLite and PostgreSQL: they make exactly the store's
tables, and bring a log an older notifier made with `create_all` (float times, no indexes, no
version, erasures kept in clear, outcomes awaiting publication) to today's, its data kept."""

import hashlib
import json
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from rebond_notifier.messages import OUTCOME_NAMESPACE
from rebond_notifier.store import MIGRATIONS, DeliveryStore, Offer, metadata, migrate
from rebond_sql import Database
from rebond_sql.migrations import upgrade
from rebond_sql.outbox import Message
from rebond_sql.testing import schema_differences

pytestmark = pytest.mark.real_migrations  # what they test is the migrations themselves

KEPT, ERASED = "RB-7K3M-Q9XA-2DFE-W8NB", "RB-0000-0000-0000-0001"
AT = 1_796_550_000.5  # 2026-12-06 09:40:00.5 UTC
#: An older notifier's notes of referrals handed to APESA: one published, one it could not.
NOTES = [
    {"referral_id": str(uuid.uuid4()), "reference": KEPT, "association_id": "apesa",
     "noted_at": AT, "published_at": published}
    for published in (AT, None)
]  # fmt: skip


def _offer(note: dict[str, object]) -> Offer:
    referral = str(note["referral_id"])
    message = Message(topic="referrals.apesa", key=KEPT, value=b"{}", subject=KEPT,
                      headers={"ce_id": referral})  # fmt: skip
    return Offer(referral, KEPT, "apesa", [], message)


def test_the_migrations_make_exactly_the_stores_tables(sql_url: str) -> None:
    """No difference between the migrated log and the store's metadata; a second run is a
    no-op."""
    migrate(sql_url)
    migrate(sql_url)
    assert schema_differences(sql_url, metadata) == []


async def _never_reuses_ids(url: str) -> None:
    """SQLite: the deliveries and the outbox never give an id twice (AUTOINCREMENT, which
    `compare_metadata` does not see)."""
    if not url.startswith("sqlite"):
        return
    query = sa.text(
        "SELECT name FROM sqlite_master WHERE sql LIKE '%PRIMARY KEY AUTOINCREMENT%' ORDER BY name"
    )
    database = Database(url)
    try:
        names = await database.run(lambda c: list(c.execute(query).scalars()))
    finally:
        await database.close()
    assert names == ["notifier_deliveries", "notifier_outbox"]


def _delivery(reference: str, kind: str, status: str, published: bool) -> dict[str, object]:
    return {
        "referral_id": str(uuid.uuid4()), "channel": "association_email", "kind": kind,
        "reference": reference, "association_id": "apesa", "correlation_id": reference,
        "status": status, "attempts": 1, "next_attempt_at": AT, "locked_until": None,
        "payload": None, "last_error": None, "outcome_published": published, "created_at": AT,
    }  # fmt: skip


async def _older_log(url: str) -> dict[str, dict[str, object]]:
    """A log as an older notifier's `create_all` left it: no Alembic version, no indexes, no
    referral states yet, erasures in clear; returns the deliveries written, by kind."""
    upgrade(url, MIGRATIONS, "0001")
    rows = {
        "sent": _delivery(KEPT, "offer", "sent", published=False),
        "told": _delivery(KEPT, "confirmation", "sent", published=True),
        "pending": _delivery(KEPT, "reminder", "pending", published=False),
        "erased": _delivery(ERASED, "offer", "sent", published=True),
    }

    def olden(connection: sa.Connection) -> None:
        connection.execute(sa.text("DROP TABLE alembic_version"))
        connection.execute(sa.text("DROP TABLE notifier_referral_states"))
        for index in ("ix_notifier_deliveries_due", "ix_notifier_deliveries_unpublished"):
            connection.execute(sa.text(f"DROP INDEX {index}"))
        connection.execute(
            sa.text("CREATE TABLE notifier_erasures (reference VARCHAR(32) PRIMARY KEY, "
                    "erased_at FLOAT NOT NULL)")
        )  # fmt: skip
        connection.execute(
            sa.text("INSERT INTO notifier_erasures VALUES (:reference, :at)"),
            {"reference": ERASED, "at": AT},
        )
        deliveries = sa.table("notifier_deliveries", *(sa.column(c) for c in rows["sent"]))
        connection.execute(sa.insert(deliveries), list(rows.values()))
        offers = sa.table("notifier_referrals", *(sa.column(c) for c in NOTES[0]))
        connection.execute(sa.insert(offers), NOTES)

    database = Database(url)
    try:
        await database.run(olden)
    finally:
        await database.close()
    return rows


async def test_an_older_log_is_brought_to_todays_with_its_data(sql_url: str) -> None:
    """Upgraded: the tables and indexes are today's, float times read as the same aware
    instants, an erasure kept in clear is a tombstone with the person's rows gone, and an
    outcome not yet published waits in the outbox under the event id it would have had."""
    rows = await _older_log(sql_url)

    migrate(sql_url)

    assert schema_differences(sql_url, metadata) == []
    await _never_reuses_ids(sql_url)
    store = DeliveryStore.from_url(sql_url)
    try:
        [pending] = await store.find(str(rows["pending"]["referral_id"]))
        [due] = await store.due(now=datetime(2026, 12, 6, 9, 40, 0, 500000, tzinfo=UTC))
        assert due == pending
        assert await store.due(now=datetime(2026, 12, 6, 9, 40, 0, 499999, tzinfo=UTC)) == []
        assert await store.erased_among([ERASED, KEPT]) == {ERASED}
        assert await store.find(str(rows["erased"]["referral_id"])) == []
        tombstone = await store.database.run(
            lambda c: c.execute(sa.text("SELECT reference_sha256 FROM notifier_tombstones")).all()
        )
        assert tombstone == [(hashlib.sha256(ERASED.encode()).hexdigest(),)]
        [waiting] = await store.database.run(store.outbox.pending)
        await store.database.run(lambda c: store.outbox.forget(c, [waiting.id]))
        # The decisions read again: only the referral the older notifier could not publish goes.
        await store.offer([_offer(note) for note in NOTES])
        [unpublished] = await store.database.run(store.outbox.pending)
    finally:
        await store.close()
    assert unpublished.headers["ce_id"] == NOTES[1]["referral_id"]
    sent = rows["sent"]
    key = f"{sent['referral_id']}:association_email:offer:sent"
    assert waiting.headers["ce_id"] == str(uuid.uuid5(OUTCOME_NAMESPACE, key))
    assert (waiting.topic, waiting.key) == ("notifications.deliveries", KEPT)
    assert json.loads(waiting.value)["outcome"] == "sent"
