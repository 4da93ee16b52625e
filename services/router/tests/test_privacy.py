"""Erasure and anonymisation of the router's store (SQLite and PostgreSQL, controlled clock)."""

import hashlib
from datetime import timedelta

from sqlalchemy import select

from rebond_contracts.payloads import DeclineReason
from rebond_router.lifecycle import Router
from rebond_router.privacy import anonymise, erased
from rebond_router.store import Store, erasures, metadata, referrals
from rebond_sql.erasure import lock_references, reference_digest
from rebond_sql.testing import rows_of, waits_for

from .conftest import (
    NOW,
    REFERENCE,
    SIXTY,
    Clock,
    FakeOutputs,
    answer,
    current_referral,
    questionnaire,
)


async def _row(store: Store, track: str = "main") -> dict:
    query = select(referrals).where(referrals.c.reference == REFERENCE, referrals.c.track == track)
    return dict(await store.database.run(lambda c: c.execute(query).mappings().one()))


async def _tables(store: Store) -> dict[str, list[tuple]]:
    return await rows_of(store.database, metadata)


async def test_erasure_leaves_the_tombstone_only_and_stops_the_lifecycle(
    router: Router, outputs: FakeOutputs, store: Store, clock: Clock
) -> None:
    """Erased (a person in distress, with consent: urgent referrals to APESA and to the main
    track's association): nothing is left of either referral (no urgent flag, scores, reasons, candidates or offers; the reference
    nowhere), only its SHA-256; no reminder, expiry or re-orientation follows, and a late
    answer changes nothing."""
    await router.on_questionnaire(questionnaire(distress="yes", consents__sensitive_data=True))
    referral_id = current_referral(outputs)
    assert (await _row(store))["urgent"] is (await _row(store, "distress"))["urgent"] is True
    sent_before = len(outputs.sent)

    assert await router.on_erasure(REFERENCE) is True
    assert await router.on_erasure(REFERENCE) is False  # a redelivery changes nothing

    tables = await _tables(store)
    assert REFERENCE not in repr(tables)
    assert tables["router_erasures"] == [(hashlib.sha256(REFERENCE.encode()).hexdigest(), NOW)]
    assert all(not tables[t] for t in ("router_referrals", "router_offers", "router_outbox"))
    clock.advance(days=30)
    assert await router.check_deadlines() == 0
    await router.on_response(SIXTY, answer(SIXTY, referral_id, "late-answer"))
    assert len(outputs.sent) == sent_before
    assert await erased(store, REFERENCE)


async def test_an_answer_whose_event_id_mimics_an_erasure_marker_does_not_block_it(
    router: Router, outputs: FakeOutputs, store: Store, clock: Clock
) -> None:
    """An association answers with `ce_id` `erasure:<reference>` (the marker an older router
    kept its erasures under, among answers' ids): the erasure still happens in full."""
    await router.on_questionnaire(questionnaire())
    referral_id = current_referral(outputs)
    await router.on_response(
        SIXTY, answer(SIXTY, referral_id, f"erasure:{REFERENCE}", DeclineReason.NO_CAPACITY)
    )
    assert (await _row(store))["holder"] == "second-souffle"  # re-oriented: the answer counted

    assert await router.on_erasure(REFERENCE) is True

    assert REFERENCE not in repr(
        {k: v for k, v in (await _tables(store)).items() if k != "router_handled_events"}
    )
    assert await erased(store, REFERENCE)


async def test_a_questionnaire_arriving_after_its_erasure_is_not_routed(
    router: Router, outputs: FakeOutputs, store: Store, clock: Clock
) -> None:
    """Erasure first (out of order): the questionnaire is then neither decided nor offered."""
    await router.on_erasure(REFERENCE)
    assert await router.on_questionnaire(questionnaire()) is False
    assert outputs.sent == []
    assert (await _tables(store))["router_referrals"] == []


async def test_a_questionnaire_read_during_an_erasure_waits_for_it_and_is_not_routed(
    router: Router, outputs: FakeOutputs, store: Store, clock: Clock
) -> None:
    """A batch that reaches the store while an erasure of one of its references is under way
    waits for the erasure's commit, then sees its tombstone: that one is not routed."""
    tombstone = erasures.insert().values(
        reference_sha256=reference_digest(REFERENCE), erased_at=NOW
    )
    erasure = [
        lambda c: lock_references(c, [REFERENCE], erasing=True), lambda c: c.execute(tombstone)
    ]  # fmt: skip
    assert (
        await waits_for(store.database, erasure, router.on_questionnaire(questionnaire())) is False
    )
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
