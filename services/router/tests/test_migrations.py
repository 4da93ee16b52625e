"""The router's Alembic migrations: they make exactly the store's tables, and take over a store
an older router made (before migrations) with everything it holds. On SQLite and PostgreSQL."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rebond_router.directory import Directory
from rebond_router.lifecycle import outbox_messages
from rebond_router.privacy import erased
from rebond_router.referral import Referral, Track, week_start
from rebond_router.rules import decide
from rebond_router.store import MIGRATIONS, Store, metadata, migrate, referrals
from rebond_sql.migrations import sync_url, upgrade
from rebond_sql.outbox import Message
from rebond_sql.testing import rows_of, schema_differences
from rebond_sql.types import UTCDateTime

from .conftest import NOW, REFERENCE, SIXTY, Clock, FakeOutputs, answer, questionnaire, router_on

pytestmark = pytest.mark.real_migrations  # what they test is the migrations themselves

ERASED = "RB-0000-0000-0000-0ERA"
LAST_WEEK = week_start(NOW) - timedelta(days=7)


def test_the_migrations_make_exactly_the_stores_tables(sql_url: str) -> None:
    """No difference between a migrated store and `store.metadata`; migrating again is a no-op."""
    migrate(sql_url)
    migrate(sql_url)
    assert schema_differences(sql_url, metadata) == []


def older_table(name: str, **columns: sa.types.TypeEngine[Any]) -> sa.TableClause:
    return sa.table(name, *(sa.column(column, type_) for column, type_ in columns.items()))


def as_an_older_router_left_it(url: str, referral: Referral, unsent: list[Message]) -> None:
    """What an older router left: its tables (made by `create_all` at start; the oldest had no
    tombstone table), `referral` offered and its outputs not yet published, three offers this
    week and one last week, whose count was kept already (as 5), and an erasure kept as a
    marker beside the erased row (status `erased`), and a marker beside the live referral (an
    association's answer whose id mimicked one)."""
    upgrade(url, MIGRATIONS, "0001")  # the baseline is those tables
    row = {c.name: getattr(referrals.c, c.name).type for c in referrals.columns}
    del row["track"]
    old_referrals = older_table("router_referrals", **row)
    offers = older_table(
        "router_offers", referral_id=sa.String(), reference=sa.String(),
        association_id=sa.String(), offered_at=UTCDateTime(),
    )  # fmt: skip
    week_offers = older_table(
        "router_week_offers", association_id=sa.String(), week_start=UTCDateTime(),
        offers=sa.Integer(),
    )  # fmt: skip
    outbox = older_table(
        "router_outbox", reference=sa.String(), topic=sa.String(), key=sa.String(),
        value=sa.Text(), headers=sa.Text(), created_at=UTCDateTime(),
    )  # fmt: skip
    handled = older_table("router_handled_events", event_id=sa.String(), handled_at=UTCDateTime())
    values = store_row(referral)
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE alembic_version"))
            connection.execute(sa.text("DROP TABLE router_erasures"))
            connection.execute(
                old_referrals.insert(),
                [values, {**values, "reference": ERASED, "decision_id": "d-erased",
                          "status": "erased", "template": None}],
            )  # fmt: skip
            connection.execute(
                offers.insert(),
                [{"referral_id": f"r-{n}", "reference": REFERENCE, "association_id": SIXTY.value,
                  "offered_at": NOW if n < 3 else LAST_WEEK} for n in range(4)],
            )  # fmt: skip
            connection.execute(
                week_offers.insert().values(association_id=SIXTY.value, week_start=LAST_WEEK,
                                            offers=5)
            )  # fmt: skip
            connection.execute(
                outbox.insert(),
                [{"reference": m.subject, "topic": m.topic, "key": m.key,
                  "value": m.value.decode(), "headers": json.dumps(dict(m.headers)),
                  "created_at": NOW} for m in unsent],
            )  # fmt: skip
            connection.execute(
                handled.insert(),
                [{"event_id": f"erasure:{r}", "handled_at": NOW} for r in (ERASED, REFERENCE)],
            )
    finally:
        engine.dispose()


def store_row(referral: Referral) -> dict[str, Any]:
    """`referral`'s row as the older router wrote it (the same columns, no track nor what the
    follow-up keeps)."""
    from rebond_router.store import _row

    row = {**_row(referral), "version": 1}
    for newer in ("track", "case_facts", "follow_up_at", "outcome", "decided_at", "features"):
        del row[newer]
    return row


async def test_a_store_made_before_migrations_is_taken_over_with_what_it_holds(
    sql_url: str, directory: Directory
) -> None:
    """An older router's store, migrated: it has exactly today's tables; its referral is on the
    main track, unchanged (but for what the follow-up keeps, which it did not have), and goes on (the holder's answer is taken); its unpublished
    outputs go out in their order with their values and headers; this week's offers are
    counted and last week's count is left as it was; its erasure marker is a tombstone with
    nothing left of the erased referral, and the marker beside a live referral stays a marker."""
    event = questionnaire()
    first = Referral.offer(
        decide(event.id, event.data, NOW, directory, {}), event.data, event.correlationid,
        NOW, directory,
    )  # fmt: skip
    unsent = outbox_messages(first)
    as_an_older_router_left_it(sql_url, first.referral, unsent)

    migrate(sql_url)

    assert schema_differences(sql_url, metadata) == []
    store = Store.from_url(sql_url)
    outputs, clock = FakeOutputs(), Clock()
    try:
        async with store.transaction() as tx:
            older = replace(first.referral, version=1, case=None, decided_at=None, features=None)
            assert await tx.referrals(REFERENCE) == [older]
            assert older.track is Track.MAIN
            assert await tx.offered_in_week(week_start(NOW)) == {SIXTY: 3}
            assert await tx.offered_in_week(LAST_WEEK) == {SIXTY: 5}
            assert await tx.handled(f"erasure:{REFERENCE}")
        pending = await store.database.run(store.outbox.pending)
        assert [(m.topic, m.key, m.value, dict(m.headers), m.subject) for m in pending] == [
            (m.topic, m.key, m.value, dict(m.headers), m.subject) for m in unsent
        ]
        assert await erased(store, ERASED) and not await erased(store, REFERENCE)
        assert ERASED not in repr(await rows_of(store.database, metadata))

        router = router_on(store, directory, outputs, clock)
        assert await router.publisher.flush() == len(unsent)
        referral_id = str(first.referral.referral_id)
        await router.on_response(SIXTY, answer(SIXTY, referral_id, "r-1"))
        assert outputs.statuses() == [("offered", SIXTY), ("accepted", SIXTY)]
    finally:
        await store.close()


def test_the_migrate_command_makes_a_new_store(tmp_path: Path) -> None:
    """`python -m rebond_router migrate` (a Kubernetes Job's command) on the default kind of URL,
    in a folder that does not exist yet: the store has every table afterwards."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'new' / 'router.sqlite3'}"
    done = subprocess.run(
        [sys.executable, "-m", "rebond_router", "migrate"],
        env={**os.environ, "ROUTER_DATABASE_URL": url, "ROUTER_LOG_LEVEL": "WARNING"},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "newest migration" in done.stdout
    assert schema_differences(url, metadata) == []
