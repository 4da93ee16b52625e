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
from rebond_contracts.payloads import DeclineReason, ReferralStatus
from rebond_router.directory import Directory
from rebond_router.lifecycle import Router
from rebond_router.referral import Referral, Rejected, State, Transition
from rebond_router.rules import decide

from .conftest import NOW, REFERENCE, FakeOutputs, anonymous, answer, questionnaire, submitted
from .fakes import FakePublisher, FakeReferrals

SIXTY = AssociationId.SOIXANTE_MILLE_REBONDS
SOUFFLE = AssociationId.SECOND_SOUFFLE
APESA = AssociationId.APESA
NOBODY = UUID(int=0)

#: 60 000 rebonds' offer, reoriented to Second Souffle (attempt 2).
TO_SOUFFLE = [
    f"status reoriented {SIXTY}", f"decision 2 {SOUFFLE}", "outcome 2",
    f"status offered {SOUFFLE}",
]  # fmt: skip


def unrouted(holder: AssociationId) -> list[str]:
    return [f"status unrouted {holder}", "unrouted all_declined_or_expired"]


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
}

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
    **{
        (state, "withdraw"): (State.WITHDRAWN, [])
        for state in (
            "offered",
            "offered to the last candidate",
            "reminded",
            "accepted",
            "unrouted",
            "not shared",
            "withdrawn",
        )
    },
}


def states(directory: Directory) -> dict[str, Referral]:
    """A referral in each state, from the example questionnaire (60 000 rebonds first, Second
    Souffle the alternate)."""
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
    return {
        "offered": offered,
        "offered to the last candidate": last,
        "reminded": offered.remind(offered.remind_at or NOW).referral,
        "accepted": offered.accept(SIXTY, referral_id, NOW).referral,
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
    """The published events in a line each: what they say, not how."""
    return [SUMMARIES[sent.topic](sent.data) for sent in outputs.sent]


def on_fakes(directory: Directory) -> tuple[Router, FakeReferrals, FakeOutputs]:
    referrals, outputs = FakeReferrals(), FakeOutputs()
    publisher = FakePublisher(referrals, outputs, lambda: NOW)
    return Router(referrals, publisher, directory, lambda: NOW), referrals, outputs


STATES = [
    "offered", "offered to the last candidate", "reminded", "accepted", "unrouted", "not shared",
    "withdrawn",
]  # fmt: skip


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
    assert ids[0] == ids[1] and len(set(ids[0])) == len(ids[0]) == 5


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
    assert len(outputs.sent) == len(events)


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
