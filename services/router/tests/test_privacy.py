"""Erasure and anonymisation of the router's store (SQLite and PostgreSQL, controlled clock)."""

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from rebond_router.directory import Directory
from rebond_router.lifecycle import Rejected, Router
from rebond_router.privacy import anonymise, erase, erased
from rebond_router.store import Store, referrals

from .conftest import REFERENCE, Clock, FakeOutputs
from .test_lifecycle import SIXTY, answer, current_referral, questionnaire


@pytest.fixture
async def store(sql_url: str) -> AsyncIterator[Store]:
    store = Store.from_url(sql_url)
    await store.create_schema()
    yield store
    await store.close()


@pytest.fixture
def router(store: Store, directory: Directory, outputs: FakeOutputs, clock: Clock) -> Router:
    return Router(store, directory, outputs, clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outputs() -> FakeOutputs:
    return FakeOutputs()


async def _row(store: Store) -> dict:
    query = select(referrals).where(referrals.c.reference == REFERENCE)
    return dict(await store.database.run(lambda c: c.execute(query).mappings().one()))


async def test_erasure_stops_the_lifecycle_and_drops_the_contact_copy(
    router: Router, outputs: FakeOutputs, store: Store, clock: Clock
) -> None:
    """Erased: no contact copy, no reminder, no expiry, no re-orientation, answers refused."""
    await router.on_questionnaire(questionnaire())
    referral_id = current_referral(outputs)
    assert (await _row(store))["template"] is not None
    sent_before = len(outputs.sent)

    assert await erase(store, REFERENCE, clock()) is True
    assert await erase(store, REFERENCE, clock()) is False  # a redelivery changes nothing

    row = await _row(store)
    assert row["status"] == "erased" and row["template"] is None and row["candidates"] == []
    clock.advance(days=30)
    assert await router.check_deadlines() == 0
    with pytest.raises(Rejected):
        await router.on_response(SIXTY, answer(SIXTY, referral_id, "late-answer"))
    assert len(outputs.sent) == sent_before
    assert await erased(store, REFERENCE)


async def test_a_questionnaire_arriving_after_its_erasure_is_not_routed(
    router: Router, outputs: FakeOutputs, store: Store, clock: Clock
) -> None:
    """Erasure first (out of order): the questionnaire is then neither decided nor offered."""
    await erase(store, REFERENCE, clock())
    assert await router.on_questionnaire(questionnaire()) is False
    assert outputs.sent == []


async def test_anonymise_drops_contact_copies_after_the_retention_period(
    router: Router, outputs: FakeOutputs, store: Store, clock: Clock
) -> None:
    """Within retention the copy stays; once a referral is unchanged for longer, it goes."""
    await router.on_questionnaire(questionnaire())
    retention = timedelta(days=30)

    assert (await anonymise(store, clock() + timedelta(days=29), retention)).referrals == 0
    assert (await _row(store))["template"] is not None

    done = await anonymise(store, clock() + timedelta(days=31), retention)
    assert done.referrals == 1
    row = await _row(store)
    assert row["template"] is None and row["scores"]  # the routing itself is kept
    assert (await anonymise(store, clock() + timedelta(days=31), retention)).referrals == 0
