"""The referral lifecycle on a real store (SQLite file and PostgreSQL) with a controlled clock."""

import asyncio
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid5

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import DeclineReason, RoutingDecisionV1
from rebond_contracts.topics import QUESTIONNAIRES
from rebond_router.directory import Directory
from rebond_router.lifecycle import Router
from rebond_router.referral import Offer, Referral, Rejected, State, week_start
from rebond_router.rules import decide, decision_id_for, reorientation_id
from rebond_router.store import Store, Tx, referrals
from rebond_sql.outbox import Message, Pending

from .conftest import (
    NOW,
    REFERENCE,
    SIXTY,
    SOUFFLE,
    Clock,
    FakeOutputs,
    answer,
    current_referral,
    open_store,
    questionnaire,
    router_on,
    submitted,
)


async def pending(store: Store) -> list[Pending]:
    """What the outbox still holds."""
    return await store.database.run(store.outbox.pending)


async def test_a_questionnaire_is_decided_once_and_offered_to_the_best_candidate(
    router: Router, outputs: FakeOutputs, store: Store
) -> None:
    """First delivery decides and offers; a redelivery or a new event id for it decides nothing."""
    assert await router.on_questionnaire(questionnaire("event-1")) is True
    assert await router.on_questionnaire(questionnaire("event-1")) is False
    assert await router.on_questionnaire(questionnaire("event-2")) is False
    [decision] = outputs.on("routing.decisions")
    assert decision["decision_id"] == str(decision_id_for("event-1"))
    assert decision["primary"] == SIXTY and decision["alternates"] == [SOUFFLE]
    assert decision["referral"]["respond_by"] == "2026-12-06T10:00:00Z"
    assert outputs.statuses() == [("offered", SIXTY)]
    async with store.transaction() as tx:
        assert await tx.offered_in_week(week_start(NOW)) == {SIXTY: 1}
    assert await pending(store) == []


def referenced(reference: str, event_id: str) -> Any:
    return QUESTIONNAIRES.envelope(
        submitted(reference), subject=reference, correlationid=reference, id=event_id
    )


async def test_a_batch_decides_as_one_record_at_a_time_would(
    router: Router, outputs: FakeOutputs, store: Store, directory: Directory, tmp_path: Any
) -> None:
    """One transaction for the batch, yet each decision sees the offers made before it in the
    batch (the capacity share falls), a reference repeated in the batch is decided once, and
    the decisions are those of the same records handled one by one."""
    refs = [f"RB-7K3M-Q9XA-2DFE-W8N{c}" for c in "CDEF"]
    batch = [referenced(r, f"event-{i}") for i, r in enumerate(refs)]
    batch.insert(2, referenced(refs[0], "event-again"))  # a redelivery inside the batch
    assert await router.on_questionnaires(batch) == len(refs)

    decisions = outputs.on("routing.decisions")
    assert [d["reference"] for d in decisions] == refs
    shares = [next(s["capacity"] for s in d["scores"] if s["association_id"] == SIXTY)
              for d in decisions]  # fmt: skip
    assert shares == sorted(shares, reverse=True) and len(set(shares)) == len(shares)
    async with store.transaction() as tx:
        assert await tx.offered_in_week(week_start(NOW)) == {SIXTY: len(refs)}
    assert await pending(store) == []

    one_by_one = FakeOutputs()
    separate = await open_store(f"sqlite+aiosqlite:///{tmp_path}/one-by-one.sqlite3")
    try:
        single = router_on(separate, directory, one_by_one, router.clock)
        for event in batch:
            await single.on_questionnaire(event)
    finally:
        await separate.close()
    assert one_by_one.on("routing.decisions") == decisions


async def test_without_consent_a_decision_is_published_but_nothing_is_followed(
    router: Router, outputs: FakeOutputs, clock: Clock
) -> None:
    """No consent to share: the recommendation goes out, no referral, no status, no deadline."""
    await router.on_questionnaire(
        questionnaire(contact=None, consents__share_with_association=False)
    )
    [decision] = outputs.on("routing.decisions")
    assert decision["primary"] == SIXTY and decision["referral"] is None
    clock.advance(days=30)
    assert await router.check_deadlines() == 0
    assert outputs.statuses() == []


async def test_each_decision_tells_intake_its_outcome_and_events_its_invitee(
    router: Router, outputs: FakeOutputs
) -> None:
    """With the decision (for the notifier) go, in the same outbox and with ids derived from
    it, its outcome for intake (no contact, message or distress) and, as the person consented
    to invitations, the invitee for events; a re-orientation tells intake again, not events.
    The distress track's decision (APESA) tells neither."""
    await router.on_questionnaire(questionnaire(distress="yes", consents__sensitive_data=True))
    [decision, apesa] = outputs.on("routing.decisions")
    assert (decision["track"], apesa["track"], apesa["primary"]) == ("main", "distress", "apesa")
    [outcome] = outputs.on("routing.outcomes")
    [invitee] = outputs.on("routing.invitees")
    assert set(outcome) == {
        "decision_id",
        "reference",
        "primary",
        "attempt",
        "reasons",
        "decided_at",
        "alternates",
        "respond_by",
    }
    assert outcome["decision_id"] == decision["decision_id"] and outcome["attempt"] == 1
    assert {r["code"] for r in decision["reasons"]} & {"distress", "distress_resources"}
    assert not {r["code"] for r in outcome["reasons"]} & {"distress", "distress_resources"}
    assert invitee["contact"] == decision["invitation"]
    assert invitee["contact"]["email"] == "claire@example.org"
    holder = AssociationId(decision["referral"]["association_id"])
    held = decision["referral"]["referral_id"]
    await router.on_response(holder, answer(holder, held, "r-1", DeclineReason.NO_CAPACITY))
    assert [o["attempt"] for o in outputs.on("routing.outcomes")] == [1, 2]
    assert len(outputs.on("routing.invitees")) == 1
    ids = {s.topic: s.headers["ce_id"] for s in outputs.sent if s.topic.startswith("routing.")}
    assert len(set(ids.values())) == 3


async def test_no_invitee_without_consent_to_invitations(
    router: Router, outputs: FakeOutputs
) -> None:
    """A person who did not consent to invitations never reaches events."""
    await router.on_questionnaire(questionnaire(consents__event_invitations=False))
    assert len(outputs.on("routing.outcomes")) == 1
    assert outputs.on("routing.invitees") == []


async def test_a_peer_request_goes_out_once_with_the_first_decision_only(
    router: Router, outputs: FakeOutputs
) -> None:
    """Peer support asked with consent to share: one request on `peers.requests`, keyed by the
    reference, with an id derived from the decision's; a redelivery, a re-orientation and the
    distress track add none."""
    changes = {"needs": ["peer_support", "mentoring"], "distress": "yes",
               "consents__sensitive_data": True}  # fmt: skip
    assert await router.on_questionnaire(questionnaire(**changes)) is True
    assert await router.on_questionnaire(questionnaire(**changes)) is False
    [decision, _apesa] = outputs.on("routing.decisions")
    holder = AssociationId(decision["referral"]["association_id"])
    held = decision["referral"]["referral_id"]
    await router.on_response(holder, answer(holder, held, "r-1", DeclineReason.NO_CAPACITY))
    assert [d["attempt"] for d in outputs.on("routing.decisions")] == [1, 1, 2]
    [sent] = [s for s in outputs.sent if s.topic == "peers.requests"]
    assert sent.key == REFERENCE and sent.data["contact"]["first_name"] == "Claire"
    assert sent.headers["ce_id"] == str(uuid5(UUID(decision["decision_id"]), "peer-request"))


async def test_a_decline_moves_the_referral_to_the_next_alternate(
    router: Router, outputs: FakeOutputs
) -> None:
    """Declined: a new decision (attempt 2, new id) offers the next alternate the same referral."""
    await router.on_questionnaire(questionnaire())
    first = outputs.on("routing.decisions")[0]
    await router.on_response(
        SIXTY, answer(SIXTY, current_referral(outputs), "r-1", DeclineReason.NO_CAPACITY)
    )
    second = outputs.on("routing.decisions")[1]
    assert second["attempt"] == 2 and second["primary"] == SOUFFLE and second["alternates"] == []
    assert second["decision_id"] == str(reorientation_id(UUID(first["decision_id"]), 2))
    assert second["referral"]["association_id"] == SOUFFLE
    assert second["referral"]["contact"] == first["referral"]["contact"]
    assert second["referral"]["respond_by"] == "2026-12-06T10:00:00Z"
    assert outputs.statuses() == [
        ("offered", SIXTY),
        ("declined", SIXTY),
        ("reoriented", SIXTY),
        ("offered", SOUFFLE),
    ]
    assert outputs.on("referrals.status")[1]["reason"] == "no_capacity"
    assert outputs.on("referrals.status")[2]["next_association_id"] == SOUFFLE


async def test_silence_brings_a_reminder_then_expiry_and_the_next_alternate(
    router: Router, outputs: FakeOutputs, clock: Clock
) -> None:
    """Two days before the deadline a reminder goes out once; at the deadline it moves on."""
    await router.on_questionnaire(questionnaire())
    clock.advance(days=7, hours=23)
    assert await router.check_deadlines() == 0
    clock.advance(hours=1)
    assert await router.check_deadlines() == 1
    assert await router.check_deadlines() == 0
    assert outputs.statuses()[-1] == ("reminded", SIXTY)
    clock.advance(days=2)
    assert await router.check_deadlines() == 1
    assert outputs.statuses()[1:] == [
        ("reminded", SIXTY),
        ("expired", SIXTY),
        ("reoriented", SIXTY),
        ("offered", SOUFFLE),
    ]
    assert outputs.on("routing.decisions")[-1]["attempt"] == 2
    assert outputs.on("routing.decisions")[-1]["referral"]["respond_by"] == "2026-12-16T10:00:00Z"


async def test_when_nobody_is_left_the_person_goes_to_the_human_queue(
    router: Router, outputs: FakeOutputs, clock: Clock
) -> None:
    """Every candidate declined or silent: an unrouted status and a human-queue event, with the
    contact the person consented to share so that the grouping's team can call back."""
    await router.on_questionnaire(questionnaire())
    await router.on_response(
        SIXTY, answer(SIXTY, current_referral(outputs), "r-1", DeclineReason.NOT_ELIGIBLE)
    )
    clock.advance(days=10)
    assert await router.check_deadlines() == 1
    assert outputs.statuses()[-2:] == [("expired", SOUFFLE), ("unrouted", SOUFFLE)]
    [queued] = outputs.on("referrals.unrouted")
    assert queued["cause"] == "all_declined_or_expired"
    assert [(t["association_id"], t["outcome"], t["reason"]) for t in queued["tried"]] == [
        (SIXTY, "declined", "not_eligible"),
        (SOUFFLE, "expired", None),
    ]
    assert queued["contact"]["first_name"] == "Claire"
    assert queued["department"] == submitted().questionnaire.situation.department
    clock.advance(days=30)
    assert await router.check_deadlines() == 0


def with_capacity(directory: Directory, association: AssociationId, **values: Any) -> Directory:
    """`directory` with `association`'s weekly capacity (and capacity kind) changed."""
    return directory.model_copy(update={"associations": [
        a.model_copy(update=values) if a.id == association else a for a in directory.associations
    ]})  # fmt: skip


@pytest.mark.parametrize("ended", ["declined", "expired"])
async def test_moving_on_skips_an_association_full_since_the_decision(
    router: Router, outputs: FakeOutputs, directory: Directory, clock: Clock, ended: str
) -> None:
    """Capacity is checked again when a referral moves on: Second Souffle, the alternate, has
    reached its (hard) weekly capacity since the decision, so 60 000 rebonds' decline or
    silence sends the case to the human queue, cause `no_capacity`; never to Second Souffle."""
    await router.on_questionnaire(questionnaire())
    router.directory = with_capacity(router.directory, SOUFFLE, weekly_capacity=0)
    if ended == "declined":
        decline = answer(SIXTY, current_referral(outputs), "r-1", DeclineReason.NO_CAPACITY)
        await router.on_response(SIXTY, decline)
    else:
        clock.advance(days=10)
        assert await router.check_deadlines() == 1
    assert outputs.statuses()[-2:] == [(ended, SIXTY), ("unrouted", SIXTY)]
    [queued] = outputs.on("referrals.unrouted")
    assert queued["cause"] == "no_capacity"


async def test_moving_on_to_a_soft_capacity_association_ignores_its_count(
    router: Router, outputs: FakeOutputs, directory: Directory
) -> None:
    """An association marked `capacity: soft` still takes the case past its weekly capacity."""
    await router.on_questionnaire(questionnaire())
    router.directory = with_capacity(router.directory, SOUFFLE, weekly_capacity=0, capacity="soft")
    decline = answer(SIXTY, current_referral(outputs), "r-1", DeclineReason.NO_CAPACITY)
    await router.on_response(SIXTY, decline)
    assert outputs.statuses()[-2:] == [("reoriented", SIXTY), ("offered", SOUFFLE)]


async def test_no_eligible_association_with_consent_goes_straight_to_the_human_queue(
    router: Router, outputs: FakeOutputs, directory: Directory, store: Store, clock: Clock
) -> None:
    """All candidates paused: the decision has no referral and the human queue gets the case."""
    paused = directory.model_copy(
        update={
            "associations": [a.model_copy(update={"paused": True}) for a in directory.associations]
        }
    )
    await router_on(store, paused, outputs, clock).on_questionnaire(questionnaire())
    [decision] = outputs.on("routing.decisions")
    assert decision["primary"] is None and decision["referral"] is None
    assert outputs.on("referrals.unrouted")[0]["cause"] == "no_candidate"


async def test_an_answer_about_a_referral_not_held_is_rejected_and_changes_nothing(
    router: Router, outputs: FakeOutputs
) -> None:
    """Another association, or another referral id, cannot answer; the holder still can."""
    await router.on_questionnaire(questionnaire())
    held = current_referral(outputs)
    with pytest.raises(Rejected, match="second-souffle does not hold"):
        await router.on_response(SOUFFLE, answer(SOUFFLE, held, "r-1", DeclineReason.OTHER))
    with pytest.raises(Rejected, match="does not hold"):
        await router.on_response(
            SIXTY, answer(SIXTY, "00000000-0000-4000-8000-000000000000", "r-2")
        )
    assert outputs.statuses() == [("offered", SIXTY)]
    await router.on_response(SIXTY, answer(SIXTY, held, "r-3"))
    assert outputs.statuses()[-1] == ("accepted", SIXTY)
    with pytest.raises(Rejected, match="already accepted"):
        await router.on_response(SIXTY, answer(SIXTY, held, "r-4", DeclineReason.DUPLICATE))


async def test_a_redelivered_answer_is_handled_once(router: Router, outputs: FakeOutputs) -> None:
    """The same answer event delivered twice declines once (no double re-orientation)."""
    await router.on_questionnaire(questionnaire())
    decline = answer(SIXTY, current_referral(outputs), "r-1", DeclineReason.UNREACHABLE)
    await router.on_response(SIXTY, decline)
    await router.on_response(SIXTY, decline)
    assert [s for s, _ in outputs.statuses()].count("declined") == 1
    assert len(outputs.on("routing.decisions")) == 2


async def test_accepting_stops_the_clock_and_erases_the_contact_details(
    router: Router, outputs: FakeOutputs, store: Store, clock: Clock
) -> None:
    """Accepted: no reminder nor expiry afterwards (the follow-up comes only after 30 days), and
    the stored referral copy is erased."""
    await router.on_questionnaire(questionnaire())
    await router.on_response(SIXTY, answer(SIXTY, current_referral(outputs), "r-1"))
    clock.advance(days=29)
    assert await router.check_deadlines() == 0
    async with store.transaction() as tx:
        [referral] = await tx.referrals(REFERENCE)
    assert referral.state is State.ACCEPTED and referral.template is None


async def test_each_decision_is_told_once_after_its_transaction_commits(
    store: Store, directory: Directory, outputs: FakeOutputs, clock: Clock, monkeypatch: Any
) -> None:
    """What the decisions metric counts: a decision whose transaction rolled back is not told;
    decided again and committed, it is told once; a redelivery tells nothing; a reorientation
    after a decline is a decision of its own."""
    told: list[RoutingDecisionV1] = []
    router = router_on(store, directory, outputs, clock, decided=told.append)
    failing_write = Tx.write

    async def write_fails(tx: Tx) -> None:
        monkeypatch.setattr(Tx, "write", failing_write)  # once
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(Tx, "write", write_fails)
    with pytest.raises(OperationalError):
        await router.on_questionnaire(questionnaire())
    assert told == [] and outputs.sent == []
    assert await router.on_questionnaire(questionnaire()) is True
    assert await router.on_questionnaire(questionnaire()) is False
    assert [(d.attempt, d.referral and d.referral.association_id) for d in told] == [(1, SIXTY)]
    await router.on_response(
        SIXTY, answer(SIXTY, current_referral(outputs), "r-1", DeclineReason.NO_CAPACITY)
    )
    assert [(d.attempt, d.referral and d.referral.association_id) for d in told] == [
        (1, SIXTY),
        (2, SOUFFLE),
    ]
    assert [str(d.decision_id) for d in told] == [
        d["decision_id"] for d in outputs.on("routing.decisions")
    ]


async def test_outputs_survive_a_failed_publish_and_go_out_on_the_next_flush(
    router: Router, outputs: FakeOutputs, clock: Clock
) -> None:
    """Kafka refuses the decision after it is stored: nothing is lost, the retry publishes it
    once, and the outputs that Kafka did take (all were in flight) are not published again."""
    outputs.fail_next = 1
    with pytest.raises(OSError):
        await router.on_questionnaire(questionnaire())
    assert [s.topic for s in outputs.sent] == [
        "routing.outcomes",
        "routing.invitees",
        "referrals.status",
        "statistics.facts",
    ]
    assert await router.on_questionnaire(questionnaire()) is False  # the redelivery
    assert len(outputs.on("routing.decisions")) == 1
    assert outputs.statuses() == [("offered", SIXTY)]
    clock.advance(minutes=5)
    assert await router.publisher.flush(older_than=timedelta(seconds=30)) == 0


async def test_a_deadline_fires_once_when_two_routers_check_at_the_same_time(
    store: Store, directory: Directory, clock: Clock
) -> None:
    """Two instances on one database: the expiry and the re-orientation happen exactly once."""
    first_out, second_out = FakeOutputs(), FakeOutputs()
    first = router_on(store, directory, first_out, clock)
    second_store = Store.from_url(store.database.url.render_as_string(hide_password=False))
    second = router_on(second_store, directory, second_out, clock)
    for n in range(4):
        event = QUESTIONNAIRES.envelope(
            submitted(reference=f"RB-0000-0000-0000-000{n}"),
            subject=f"RB-0000-0000-0000-000{n}",
            correlationid="c",
            id=f"event-{n}",
        )
        await first.on_questionnaire(event)
    clock.advance(days=10)
    fired = await asyncio.gather(first.check_deadlines(), second.check_deadlines())
    await second_store.close()
    assert sum(fired) == 4
    expired = [
        d
        for out in (first_out, second_out)
        for d in out.on("referrals.status")
        if d["status"] == "expired"
    ]
    assert sorted(d["reference"] for d in expired) == [
        f"RB-0000-0000-0000-000{n}" for n in range(4)
    ]
    async with store.transaction() as tx:
        rows = await tx.run(lambda c: c.execute(select(referrals.c.attempt)).scalars().all())
    assert rows == [2, 2, 2, 2]


def offered(reference: str, directory: Directory) -> Referral:
    """The referral of the example questionnaire sent with `reference`, as first offered."""
    answers = submitted(reference)
    routing = decide(f"event-{reference}", answers, NOW, directory, {})
    return Referral.offer(routing, answers, reference, NOW, directory).referral


async def test_weekly_offers_are_counted_per_week_and_across_transactions(
    store: Store, directory: Directory
) -> None:
    """Each offer adds one to its association's count for its week (Monday 00:00 UTC), in
    whatever transaction it is made; another week has its own count."""
    monday = week_start(NOW)
    made = [offered(f"RB-0000-0000-0000-000{n}", directory) for n in range(4)]
    at = [NOW, NOW, monday, monday - timedelta(seconds=1)]

    async def add(tx: Tx, n: int) -> None:
        referral = made[n]
        assert referral.referral_id is not None
        await tx.add(referral, Offer(referral.referral_id, SIXTY, at[n]), [], NOW)

    async with store.transaction() as tx:
        await add(tx, 0)
        await add(tx, 1)
        assert await tx.offered_in_week(monday) == {SIXTY: 2}  # its own, before commit
    async with store.transaction() as tx:
        await add(tx, 2)
        await add(tx, 3)
    async with store.transaction() as tx:
        assert await tx.offered_in_week(monday) == {SIXTY: 3}
        assert await tx.offered_in_week(monday - timedelta(days=7)) == {SIXTY: 1}


class AllTogether:
    """A Kafka that acknowledges nothing until `expected` records were handed to it: a relay
    that waited for some acknowledgements before handing over the rest would wait forever."""

    def __init__(self, expected: int) -> None:
        self.expected, self.handed = expected, 0
        self.all_in = asyncio.Event()

    async def send(self, message: Message) -> "asyncio.Future[bool]":
        self.handed += 1
        if self.handed >= self.expected:
            self.all_in.set()
        return asyncio.ensure_future(self.all_in.wait())


async def test_a_full_batch_s_outputs_are_all_in_flight_together(
    store: Store, directory: Directory, clock: Clock
) -> None:
    """A batch of `batch_max_records` questionnaires (500, each with a decision, its outcome,
    its invitee and an offer or the human queue; people who refused the statistics, so no
    fact): its 2,000 outputs are handed to the producer before any acknowledgement is awaited,
    as when the router read its outbox back whole."""
    events = [
        QUESTIONNAIRES.envelope(
            submitted(ref, consents__statistics=False), subject=ref, correlationid=ref,
            id=f"event-{n}",
        )
        for n, ref in ((n, f"RB-0000-0000-0000-{n:04d}") for n in range(500))
    ]  # fmt: skip
    kafka = AllTogether(expected=2000)
    router = Router(store, store.relay(kafka.send, clock, 500), directory, clock)
    async with asyncio.timeout(60):
        assert await router.on_questionnaires(events) == 500
    assert kafka.handed == 2000 and await pending(store) == []
