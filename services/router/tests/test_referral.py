"""The referral aggregate, table-tested against the fake repository: every command from every
state, allowed (the state it leaves and the events published, in order) or refused (`Rejected`:
nothing stored, nothing published); and the router's use cases on the same fake."""

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    DeclineReason,
    FollowUpAnsweredV1,
    OutcomeKind,
    ReferralOutcomeV1,
    ReferralStatus,
)
from rebond_contracts.topics import FOLLOW_UPS, responses
from rebond_router.directory import Directory
from rebond_router.lifecycle import Router
from rebond_router.referral import Referral, Rejected, State, Track, Transition
from rebond_router.rules import decide

from .conftest import (
    APESA,
    NOW,
    REFERENCE,
    SIXTY,
    SOUFFLE,
    FakeOutputs,
    anonymous,
    answer,
    questionnaire,
    submitted,
)
from .fakes import FakePublisher, FakeReferrals

NOBODY = UUID(int=0)

#: 60 000 rebonds' offer, reoriented to Second Souffle (attempt 2).
TO_SOUFFLE = [
    f"status reoriented {SIXTY}", f"decision 2 {SOUFFLE}", "outcome 2",
    f"status offered {SOUFFLE}",
]  # fmt: skip


def unrouted(holder: AssociationId) -> list[str]:
    return [f"status unrouted {holder}", "unrouted all_declined_or_expired"]


def reported(referral: Referral, outcome: OutcomeKind = OutcomeKind.CONTACTED) -> ReferralOutcomeV1:
    """The holder's report of what happened after it accepted `referral`."""
    return ReferralOutcomeV1(
        referral_id=referral.referral_id or NOBODY, reference=REFERENCE, outcome=outcome,
        on=NOW.date(), recorded_at=NOW,
    )  # fmt: skip


def follow_up_answer(referral: Referral, contacted: bool) -> FollowUpAnsweredV1:
    """The person's answer to the follow-up of `referral`."""
    return FollowUpAnsweredV1(
        reference=REFERENCE, referral_id=referral.referral_id or NOBODY,
        association_id=referral.holder or SIXTY, contacted=contacted, answered_at=NOW,
    )  # fmt: skip


Command = Callable[[Referral, Directory], Transition]
COMMANDS: dict[str, Command] = {
    "accept": lambda r, d: r.accept(r.holder or SIXTY, r.referral_id or NOBODY, NOW),
    "accept by another association": lambda r, d: r.accept(APESA, r.referral_id or NOBODY, NOW),
    "decline": lambda r, d: r.decline(
        r.holder or SIXTY, r.referral_id or NOBODY, DeclineReason.NO_CAPACITY, NOW, d
    ),
    "remind at its time": lambda r, d: r.remind(r.remind_at or NOW),
    "remind before its time": lambda r, d: r.remind((r.remind_at or NOW) - timedelta(hours=1)),
    "expire at the deadline": lambda r, d: r.expire(r.deadline or NOW, d),
    "expire before the deadline": lambda r, d: r.expire(
        (r.deadline or NOW) - timedelta(hours=1), d
    ),
    "reorient": lambda r, d: r.reorient(ReferralStatus.DECLINED, DeclineReason.OTHER, NOW, d),
    "unroute": lambda r, d: r.unroute(ReferralStatus.EXPIRED, None, NOW),
    "withdraw": lambda r, d: r.withdraw(NOW),
    "record an outcome": lambda r, d: r.record_outcome(r.holder or SIXTY, reported(r), NOW),
    "follow up at its time": lambda r, d: r.follow_up(r.follow_up_at or NOW),
    "follow up before its time": lambda r, d: r.follow_up(
        (r.follow_up_at or NOW) - timedelta(hours=1)
    ),
    "answer the follow-up: yes": lambda r, d: r.answer_follow_up(follow_up_answer(r, True), NOW),
    "answer the follow-up: no": lambda r, d: r.answer_follow_up(follow_up_answer(r, False), NOW),
}

STATES = [
    "offered", "offered to the last candidate", "reminded", "accepted", "contact reported",
    "follow-up due", "followed up", "unrouted", "not shared", "withdrawn",
]  # fmt: skip

#: The pairs allowed: the state left and the events published. Every other pair is refused.
ALLOWED: dict[tuple[str, str], tuple[State, list[str]]] = {
    ("offered", "accept"): (State.ACCEPTED, [f"status accepted {SIXTY}"]),
    ("offered", "decline"): (State.OFFERED, [f"status declined {SIXTY}", *TO_SOUFFLE]),
    ("offered", "remind at its time"): (State.REMINDED, [f"status reminded {SIXTY}"]),
    ("offered", "expire at the deadline"): (
        State.OFFERED,
        [f"status expired {SIXTY}", *TO_SOUFFLE],
    ),
    ("offered", "reorient"): (State.OFFERED, TO_SOUFFLE),
    ("offered", "unroute"): (State.UNROUTED, unrouted(SIXTY)),
    ("offered to the last candidate", "accept"): (State.ACCEPTED, [f"status accepted {SOUFFLE}"]),
    ("offered to the last candidate", "decline"): (
        State.UNROUTED,
        [f"status declined {SOUFFLE}", *unrouted(SOUFFLE)],
    ),
    ("offered to the last candidate", "remind at its time"): (
        State.REMINDED,
        [f"status reminded {SOUFFLE}"],
    ),
    ("offered to the last candidate", "expire at the deadline"): (
        State.UNROUTED,
        [f"status expired {SOUFFLE}", *unrouted(SOUFFLE)],
    ),
    ("offered to the last candidate", "reorient"): (State.UNROUTED, unrouted(SOUFFLE)),
    ("offered to the last candidate", "unroute"): (State.UNROUTED, unrouted(SOUFFLE)),
    ("reminded", "accept"): (State.ACCEPTED, [f"status accepted {SIXTY}"]),
    ("reminded", "decline"): (State.OFFERED, [f"status declined {SIXTY}", *TO_SOUFFLE]),
    ("reminded", "expire at the deadline"): (
        State.OFFERED,
        [f"status expired {SIXTY}", *TO_SOUFFLE],
    ),
    ("reminded", "reorient"): (State.OFFERED, TO_SOUFFLE),
    ("reminded", "unroute"): (State.UNROUTED, unrouted(SIXTY)),
    ("accepted", "record an outcome"): (State.ACCEPTED, []),
    ("accepted", "follow up at its time"): (
        State.FOLLOW_UP_DUE,
        [f"status follow_up_due {SIXTY}"],
    ),
    ("contact reported", "record an outcome"): (State.ACCEPTED, []),
    ("follow-up due", "record an outcome"): (State.FOLLOW_UP_DUE, []),
    ("follow-up due", "answer the follow-up: yes"): (State.FOLLOWED_UP, []),
    ("follow-up due", "answer the follow-up: no"): (
        State.UNROUTED,
        [f"status unrouted {SIXTY}", "unrouted follow_up_not_contacted"],
    ),
    ("followed up", "record an outcome"): (State.FOLLOWED_UP, []),
    **{(state, "withdraw"): (State.WITHDRAWN, []) for state in STATES},
}


def states(directory: Directory) -> dict[str, Referral]:
    """A referral in each state, from the example questionnaire (60 000 rebonds first, Second
    Souffle the alternate); accepted, then with a contact reported, asked the follow-up, and
    answered it "yes"."""
    event = questionnaire()
    routing = decide(event.id, event.data, NOW, directory, {})
    offered = Referral.offer(routing, event.data, event.correlationid, NOW, directory).referral
    holder, referral_id = offered.holder, offered.referral_id
    assert holder is SIXTY and referral_id is not None
    last = offered.decline(SIXTY, referral_id, DeclineReason.OTHER, NOW, directory).referral
    assert last.holder is SOUFFLE and last.candidates[0].association is SOUFFLE
    alone = submitted(**anonymous())
    not_shared = Referral.offer(
        decide("event-2", alone, NOW, directory, {}), alone, REFERENCE, NOW, directory
    ).referral
    accepted = offered.accept(SIXTY, referral_id, NOW).referral
    asked = accepted.follow_up(accepted.follow_up_at or NOW).referral
    return {
        "offered": offered,
        "offered to the last candidate": last,
        "reminded": offered.remind(offered.remind_at or NOW).referral,
        "accepted": accepted,
        "contact reported": accepted.record_outcome(SIXTY, reported(accepted), NOW).referral,
        "follow-up due": asked,
        "followed up": asked.answer_follow_up(follow_up_answer(asked, True), NOW).referral,
        "unrouted": last.expire(last.deadline or NOW, directory).referral,
        "not shared": not_shared,
        "withdrawn": offered.withdraw(NOW).referral,
    }


SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "referrals.status": lambda data: f"status {data['status']} {data['association_id']}",
    "routing.decisions": lambda data: f"decision {data['attempt']} {data['primary']}",
    "routing.outcomes": lambda data: f"outcome {data['attempt']}",
    "routing.invitees": lambda _data: "invitee",
    "referrals.unrouted": lambda data: f"unrouted {data['cause']}",
}


def summary(outputs: FakeOutputs) -> list[str]:
    """The published events in a line each: what they say, not how (the statistics' facts
    that go with them are `test_statistics.py`'s)."""
    return [
        SUMMARIES[sent.topic](sent.data) for sent in outputs.sent
        if sent.topic != "statistics.facts"
    ]  # fmt: skip


def on_fakes(directory: Directory) -> tuple[Router, FakeReferrals, FakeOutputs]:
    referrals, outputs = FakeReferrals(), FakeOutputs()
    publisher = FakePublisher(referrals, outputs, lambda: NOW)
    return Router(referrals, publisher, directory, lambda: NOW), referrals, outputs


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("state", STATES)
async def test_each_command_from_each_state(state: str, command: str, directory: Directory) -> None:
    """Loaded from the repository, the command applied and saved: the state left and the events
    published are those of the table; a pair not in it is refused and changes nothing."""
    referral = states(directory)[state]
    router, referrals, outputs = on_fakes(directory)
    referrals.put(replace(referral, version=3))
    apply = COMMANDS[command]
    if (state, command) not in ALLOWED:
        with pytest.raises(Rejected):
            await router.apply(referral.key, lambda r: apply(r, directory))
        assert referrals.stored.referrals[referral.key] == replace(referral, version=3)
        assert outputs.sent == [] and referrals.stored.outbox == []
        return
    left, events = ALLOWED[(state, command)]
    await router.apply(referral.key, lambda r: apply(r, directory))
    saved = referrals.stored.referrals[referral.key]
    assert saved.state is left and saved.version == 4
    assert summary(outputs) == events
    assert referrals.stored.outbox == []  # every event went out


async def test_a_command_replayed_publishes_the_same_event_ids(directory: Directory) -> None:
    """The same command from the same state yields events with the same ids (`ce_id`): a replay
    after a crash is recognisable downstream."""
    offered = states(directory)["offered"]
    ids = []
    for _ in range(2):
        router, referrals, outputs = on_fakes(directory)
        referrals.put(offered)
        await router.apply(offered.key, lambda r: COMMANDS["decline"](r, directory))
        ids.append([sent.headers["ce_id"] for sent in outputs.sent])
    # declined, reoriented, the new decision, its outcome, offered; and the two facts
    # (declined, offered) for the statistics
    assert ids[0] == ids[1] and len(set(ids[0])) == len(ids[0]) == 7


# --- the use cases on the fake repository -------------------------------------------------

FIRST_DECISION = [f"decision 1 {SIXTY}", "outcome 1", "invitee"]


@pytest.mark.parametrize(
    ("changes", "paused", "state", "events"),
    [
        ({}, False, State.OFFERED, [*FIRST_DECISION, f"status offered {SIXTY}"]),
        (anonymous(), False, State.NOT_SHARED, [f"decision 1 {SIXTY}", "outcome 1"]),
        ({}, True, State.UNROUTED, ["decision 1 None", "outcome 1", "invitee",
                                    "unrouted no_candidate"]),
    ],
    ids=["offered", "not shared", "nobody to take it"],
)  # fmt: skip
async def test_a_questionnaire_is_offered_or_queued_or_only_decided(
    changes: dict[str, Any], paused: bool, state: State, events: list[str], directory: Directory
) -> None:
    """The first decision: offered to the best candidate; with consent and no candidate (all
    paused), the human queue; without consent, a decision and nothing to follow."""
    if paused:
        directory = directory.model_copy(
            update={"associations": [a.model_copy(update={"paused": True})
                                     for a in directory.associations]}
        )  # fmt: skip
    router, referrals, outputs = on_fakes(directory)
    assert await router.on_questionnaire(questionnaire(**changes)) is True
    [referral] = referrals.stored.referrals.values()
    assert referral.state is state
    assert summary(outputs) == events
    assert await router.on_questionnaire(questionnaire(**changes)) is False
    facts = len(outputs.on("statistics.facts"))  # `test_statistics.py`'s
    assert len(outputs.sent) == len(events) + facts


@pytest.mark.parametrize(
    ("who", "decline", "accept_reason", "error"),
    [
        (SOUFFLE, None, None, "second-souffle does not hold referral"),
        (SIXTY, None, DeclineReason.OTHER, "an acceptance carries no decline reason"),
    ],
    ids=["not the holder", "an acceptance with a reason"],
)
async def test_an_answer_the_referral_refuses_is_rejected_and_changes_nothing(
    who: AssociationId,
    decline: DeclineReason | None,
    accept_reason: DeclineReason | None,
    error: str,
    directory: Directory,
) -> None:
    """Only the holder answers, and an acceptance carries no reason: else `Rejected`, and the
    answer is not even marked handled (the holder's own answer with that id still counts)."""
    router, referrals, _ = on_fakes(directory)
    await router.on_questionnaire(questionnaire())
    [referral] = referrals.stored.referrals.values()
    response = answer(who, referral.referral_id or NOBODY, "r-1", decline)
    response = response.model_copy(
        update={"data": response.data.model_copy(update={"reason": accept_reason})}
    )
    with pytest.raises(Rejected, match=error):
        await router.on_response(who, response)
    assert referrals.stored.referrals[referral.key] == referral
    assert referrals.stored.handled == set()


async def test_a_decline_without_a_reason_is_declined_for_another_reason(
    directory: Directory,
) -> None:
    """A decline that names no reason counts as `other`."""
    router, referrals, outputs = on_fakes(directory)
    await router.on_questionnaire(questionnaire())
    [referral] = referrals.stored.referrals.values()
    response = answer(SIXTY, referral.referral_id or NOBODY, "r-1", DeclineReason.OTHER)
    response = response.model_copy(
        update={"data": response.data.model_copy(update={"reason": None})}
    )
    await router.on_response(SIXTY, response)
    assert outputs.on("referrals.status")[1]["reason"] == "other"


async def test_an_erasure_withdraws_and_forgets_every_referral_of_the_reference(
    directory: Directory,
) -> None:
    """Erased: no referral, offer or unpublished event of the reference is left, only its
    tombstone; a repeated erasure says so; a questionnaire read afterwards is not routed."""
    router, referrals, outputs = on_fakes(directory)
    await router.on_questionnaire(questionnaire())
    sent = len(outputs.sent)
    assert await router.on_erasure(REFERENCE) is True
    assert await router.on_erasure(REFERENCE) is False
    stored = referrals.stored
    assert stored.referrals == {} and stored.offers == [] and stored.outbox == []
    assert stored.tombstones == {REFERENCE}
    assert await router.on_questionnaire(questionnaire("event-2")) is False
    assert len(outputs.sent) == sent


async def test_deadlines_fire_through_the_repository_at_their_time(directory: Directory) -> None:
    """Nothing before the reminder's time; then the reminder once; at the deadline the expiry
    and the re-orientation (as the table says for an offered referral)."""
    now = [NOW]
    referrals, outputs = FakeReferrals(), FakeOutputs()
    router = Router(referrals, FakePublisher(referrals, outputs, lambda: now[0]), directory,
                    lambda: now[0])  # fmt: skip
    await router.on_questionnaire(questionnaire())
    outputs.sent.clear()
    [referral] = referrals.stored.referrals.values()
    assert referral.remind_at is not None and referral.deadline is not None
    moments: list[tuple[datetime, int]] = [
        (referral.remind_at - timedelta(seconds=1), 0),
        (referral.remind_at, 1),
        (referral.remind_at, 0),
        (referral.deadline, 1),
    ]
    for moment, fired in moments:
        now[0] = moment
        assert await router.check_deadlines() == fired
    assert summary(outputs) == [f"status reminded {SIXTY}", f"status expired {SIXTY}", *TO_SOUFFLE]


# --- tracks, who calls, follow-up: the use cases on the fake repository ---------------------


def tracked(outputs: FakeOutputs) -> list[tuple[str, str, str | None]]:
    """The statuses published, with their track."""
    return [(d["track"], d["status"], d["association_id"]) for d in outputs.on("referrals.status")]


async def test_distress_with_consent_runs_two_referrals_each_on_its_own(
    directory: Directory,
) -> None:
    """Distress "yes" with the art. 9 consent: APESA and the association for the situation are
    offered in parallel, both urgent; intake hears of the main track only; APESA's silence ends
    in the human queue (urgent), never with a non-distress association, while the main track's
    decline moves it on as usual."""
    router, referrals, outputs = on_fakes(directory)
    distressed = questionnaire(distress="yes", consents__sensitive_data=True)
    assert await router.on_questionnaire(distressed) is True
    assert tracked(outputs) == [("main", "offered", SIXTY), ("distress", "offered", APESA)]
    assert [d["track"] for d in outputs.on("routing.decisions")] == ["main", "distress"]
    assert [d["urgent"] for d in outputs.on("routing.decisions")] == [True, True]
    assert [o["primary"] for o in outputs.on("routing.outcomes")] == [SIXTY]
    main, apesa = (referrals.stored.referrals[(REFERENCE, t)] for t in (Track.MAIN, Track.DISTRESS))
    assert [c.association for c in apesa.candidates] == [APESA]
    outputs.sent.clear()

    await router.apply(apesa.key, lambda r: r.expire(r.deadline or NOW, directory))
    await router.on_response(
        SIXTY, answer(SIXTY, main.referral_id or NOBODY, "r-1", DeclineReason.NO_CAPACITY)
    )
    assert tracked(outputs) == [
        ("distress", "expired", APESA), ("distress", "unrouted", APESA),
        ("main", "declined", SIXTY), ("main", "reoriented", SIXTY), ("main", "offered", SOUFFLE),
    ]  # fmt: skip
    [queued] = outputs.on("referrals.unrouted")
    assert queued["urgent"] is True and queued["cause"] == "all_declined_or_expired"
    assert [o["attempt"] for o in outputs.on("routing.outcomes")] == [2]
    assert await router.on_questionnaire(distressed) is False


async def test_an_acceptance_tells_who_will_call_and_when(directory: Directory) -> None:
    """The association's `call_by` and `caller` are copied into the `accepted` status."""
    router, referrals, outputs = on_fakes(directory)
    await router.on_questionnaire(questionnaire())
    [referral] = referrals.stored.referrals.values()
    accepting = answer(SIXTY, referral.referral_id or NOBODY, "r-1")
    call_by = NOW + timedelta(days=2)
    accepting = accepting.model_copy(
        update={"data": accepting.data.model_copy(update={"call_by": call_by, "caller": "Léa"})}
    )
    await router.on_response(SIXTY, accepting)
    accepted = outputs.on("referrals.status")[-1]
    assert (accepted["status"], accepted["caller"]) == ("accepted", "Léa")
    assert datetime.fromisoformat(accepted["call_by"]) == call_by


@pytest.mark.parametrize(
    ("outcome", "asked"),
    [
        (None, True),
        (OutcomeKind.UNREACHABLE, True),
        (OutcomeKind.CONTACTED, False),
        (OutcomeKind.ACCOMPANIMENT_STARTED, False),
    ],
)
async def test_the_follow_up_is_due_once_after_its_delay_unless_a_contact_was_reported(
    directory: Directory, outcome: OutcomeKind | None, asked: bool
) -> None:
    """`follow_up_after` (7 days here) after the acceptance, `follow_up_due` once; an outcome
    saying the association reached the person (recorded before) spares it."""
    now = [NOW]
    referrals, outputs = FakeReferrals(), FakeOutputs()
    publisher = FakePublisher(referrals, outputs, lambda: now[0])
    router = Router(
        referrals, publisher, directory, lambda: now[0], follow_up_after=timedelta(days=7)
    )
    await router.on_questionnaire(questionnaire())
    [referral] = referrals.stored.referrals.values()
    await router.on_response(SIXTY, answer(SIXTY, referral.referral_id or NOBODY, "r-1"))
    if outcome is not None:
        report = responses(SIXTY).envelope(
            reported(referral, outcome), subject=REFERENCE, correlationid=REFERENCE, id="o-1"
        )
        await router.on_outcome(SIXTY, report)
        assert referrals.stored.referrals[referral.key].outcome is outcome
    outputs.sent.clear()
    for moment, fired in [(timedelta(days=7, seconds=-1), 0), (timedelta(days=7), int(asked))]:
        now[0] = NOW + moment
        assert await router.check_deadlines() == fired
    assert await router.check_deadlines() == 0
    assert outputs.statuses() == ([("follow_up_due", SIXTY)] if asked else [])


async def test_a_follow_up_answered_no_puts_the_case_in_the_human_queue_once(
    directory: Directory,
) -> None:
    """The person's "no" queues the case (the accepting association named among those tried),
    once: a redelivery is handled once, another "no" about it is refused; an answer about no
    referral of the reference is refused."""
    router, referrals, outputs = on_fakes(directory)
    await router.on_questionnaire(questionnaire())
    [referral] = referrals.stored.referrals.values()
    await router.on_response(SIXTY, answer(SIXTY, referral.referral_id or NOBODY, "r-1"))
    await router.apply(referral.key, lambda r: r.follow_up(r.follow_up_at or NOW))
    asked = referrals.stored.referrals[referral.key]

    def said(contacted: bool, event_id: str, about: Referral = asked) -> Any:
        return FOLLOW_UPS.envelope(
            follow_up_answer(about, contacted), subject=REFERENCE, correlationid=REFERENCE,
            id=event_id,
        )  # fmt: skip

    with pytest.raises(Rejected, match="no referral"):
        await router.on_follow_up(said(False, "f-0", replace(asked, referral_id=NOBODY)))
    await router.on_follow_up(said(False, "f-1"))
    await router.on_follow_up(said(False, "f-1"))
    with pytest.raises(Rejected, match="no follow-up is awaited"):
        await router.on_follow_up(said(False, "f-2"))
    [queued] = outputs.on("referrals.unrouted")
    assert queued["cause"] == "follow_up_not_contacted" and queued["stage"] == "after_liquidation"
    assert [(t["association_id"], t["outcome"]) for t in queued["tried"]] == [(SIXTY, "accepted")]
    assert outputs.statuses()[-1] == ("unrouted", SIXTY)
    assert referrals.stored.referrals[referral.key].state is State.UNROUTED
