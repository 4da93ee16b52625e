"""The human queue worked from the console (issue 21): assignments and closures of queued cases,
on the real store (SQLite and PostgreSQL) with the outbox published to a fake Kafka."""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import CaseAssignedV1, CaseClosedV1, DeclineReason
from rebond_router.directory import Directory
from rebond_router.lifecycle import Router
from rebond_router.referral import Rejected
from rebond_router.store import Store

from .conftest import (
    APESA,
    NOW,
    REFERENCE,
    SIXTY,
    SOUFFLE,
    Clock,
    FakeOutputs,
    anonymous,
    answer,
    current_referral,
    questionnaire,
    router_on,
)

RECREER = AssociationId.RE_CREER


def assigned(
    association: AssociationId, assignment_id: UUID | None = None, reference: str = REFERENCE
) -> CaseAssignedV1:
    return CaseAssignedV1(
        assignment_id=assignment_id or uuid4(), reference=reference, association_id=association,
        note="Rappelée le 3 : d'accord pour un premier rendez-vous.", assigned_by="staff-7",
        assigned_at=NOW,
    )  # fmt: skip


def closed(closure_id: UUID | None = None) -> CaseClosedV1:
    return CaseClosedV1(
        closure_id=closure_id or uuid4(), reference=REFERENCE, outcome="reached_by_phone",
        closed_by="staff-7", closed_at=NOW,
    )  # fmt: skip


async def queue_by_declines(router: Router, outputs: FakeOutputs) -> None:
    """Both candidates of the example person decline: the case is in the human queue."""
    await router.on_questionnaire(questionnaire())
    for index, holder in enumerate((SIXTY, SOUFFLE)):
        refusal = answer(holder, current_referral(outputs), f"r-{index}", DeclineReason.NO_CAPACITY)
        await router.on_response(holder, refusal)
    assert outputs.statuses()[-1] == ("unrouted", SOUFFLE)


async def test_an_assigned_case_gets_a_manual_decision_and_follows_the_usual_lifecycle(
    router: Router, outputs: FakeOutputs, directory: Directory, clock: Clock
) -> None:
    """A queued case assigned by a coordinator: a `manual` decision with the note, the referral
    (with the person's contact) offered to the chosen association with its deadline; its answer
    is handled as any other, and a redelivered assignment changes nothing."""
    await queue_by_declines(router, outputs)
    clock.advance(days=1)
    assignment = assigned(RECREER)
    await router.on_assignment(assignment)
    await router.on_assignment(assignment)  # redelivered
    decision = outputs.on("routing.decisions")[-1]
    assert (decision["rule"], decision["note"], decision["primary"]) == (
        "manual", assignment.note, RECREER,
    )  # fmt: skip
    assert decision["attempt"] == 3 and decision["alternates"] == []
    assert [r["code"] for r in decision["reasons"]] == ["manual"]
    assert "Re-créer" in decision["reasons"][0]["fr"]
    referral = decision["referral"]
    assert referral["contact"]["first_name"] == "Claire"
    assert referral["note"] == assignment.note  # the association reads it with the referral
    respond_by = clock.now + directory.get(RECREER).response_deadline
    assert referral["respond_by"] == respond_by.isoformat().replace("+00:00", "Z")
    assert outputs.statuses()[-1] == ("offered", RECREER)
    assert len(outputs.on("routing.decisions")) == 3
    await router.on_response(RECREER, answer(RECREER, referral["referral_id"], "r-accept"))
    assert outputs.statuses()[-1] == ("accepted", RECREER)


async def test_a_case_queued_at_once_keeps_its_copy_for_an_assignment(
    store: Store, outputs: FakeOutputs, directory: Directory, clock: Clock
) -> None:
    """Nobody could take the person (all paused): the queue shows the contact they consented to
    share, and the router keeps its copy, so that a coordinator's assignment can offer it."""
    paused = directory.model_copy(
        update={
            "associations": [a.model_copy(update={"paused": True}) for a in directory.associations]
        }
    )
    await router_on(store, paused, outputs, clock).on_questionnaire(questionnaire())
    [queued] = outputs.on("referrals.unrouted")
    assert queued["cause"] == "no_candidate" and queued["contact"]["first_name"] == "Claire"
    await router_on(store, directory, outputs, clock).on_assignment(assigned(SIXTY))
    decision = outputs.on("routing.decisions")[-1]
    assert decision["rule"] == "manual" and decision["referral"]["association_id"] == SIXTY
    assert outputs.statuses() == [("offered", SIXTY)]


async def test_a_declined_assignment_goes_back_to_the_queue_as_a_new_case_event(
    router: Router, outputs: FakeOutputs
) -> None:
    """The chosen association declines: the case is queued again, a new event (its own id)."""
    await queue_by_declines(router, outputs)
    await router.on_assignment(assigned(RECREER))
    referral = current_referral(outputs)
    await router.on_response(RECREER, answer(RECREER, referral, "r-no", DeclineReason.OTHER))
    _, again = outputs.on("referrals.unrouted")
    assert again["tried"][-1]["association_id"] == RECREER
    ids = [s.headers["ce_id"] for s in outputs.sent if s.topic == "referrals.unrouted"]
    assert len(set(ids)) == 2


async def test_closing_a_queued_case_says_closed_and_drops_the_copy(
    router: Router, outputs: FakeOutputs, store: Store
) -> None:
    """A closure publishes `closed`, forgets the contact copy, and nothing follows it."""
    await queue_by_declines(router, outputs)
    closure = closed()
    await router.on_closure(closure)
    await router.on_closure(closure)  # redelivered
    assert outputs.statuses()[-1] == ("closed", None)
    assert len([s for s in outputs.statuses() if s[0] == "closed"]) == 1
    async with store.transaction() as tx:
        [referral] = await tx.referrals(REFERENCE)
    assert referral.template is None
    with pytest.raises(Rejected, match="not in the human queue"):
        await router.on_assignment(assigned(SIXTY))


async def offered(router: Router, outputs: FakeOutputs) -> None:
    await router.on_questionnaire(questionnaire())


async def erased(router: Router, outputs: FakeOutputs) -> None:
    await queue_by_declines(router, outputs)
    await router.on_erasure(REFERENCE)


async def not_shared(router: Router, outputs: FakeOutputs) -> None:
    await router.on_questionnaire(questionnaire(**anonymous()))


async def nothing(router: Router, outputs: FakeOutputs) -> None:
    return None


@pytest.mark.parametrize(
    ("before", "refusal"),
    [
        (nothing, "no case RB-7K3M-Q9XA-2DFE-W8NB is known"),
        (erased, "was erased: the person withdrew"),
        (offered, r"not in the human queue \(offered\)"),
        (not_shared, r"not in the human queue \(not_shared\)"),
    ],
)
@pytest.mark.parametrize("command", ["assign", "close"])
async def test_a_case_not_in_the_queue_is_refused_with_its_reason(
    router: Router,
    outputs: FakeOutputs,
    before: Callable[[Router, FakeOutputs], Awaitable[None]],
    refusal: str,
    command: str,
) -> None:
    """An unknown, erased or not-queued reference is refused (the consumer dead-letters it with
    this reason) and nothing is published."""
    await before(router, outputs)
    published = len(outputs.sent)
    with pytest.raises(Rejected, match=refusal):
        if command == "assign":
            await router.on_assignment(assigned(SIXTY))
        else:
            await router.on_closure(closed())
    assert len(outputs.sent) == published


async def test_the_assignment_uses_the_deadline_in_force(
    store: Store, outputs: FakeOutputs, directory: Directory, clock: Clock
) -> None:
    """The referral's deadline is the directory's effective one when the case is assigned."""
    router = router_on(store, directory, outputs, clock)
    await queue_by_declines(router, outputs)
    router.directory = directory.model_copy(
        update={
            "associations": [
                a.model_copy(update={"response_deadline_days": 3} if a.id is SIXTY else {})
                for a in directory.associations
            ]
        }
    )
    await router.on_assignment(assigned(SIXTY))
    respond_by = outputs.on("routing.decisions")[-1]["referral"]["respond_by"]
    assert respond_by == (clock.now + timedelta(days=3)).isoformat().replace("+00:00", "Z")


IN_DISTRESS = {"distress": "yes", "consents__sensitive_data": True}


def paused(directory: Directory, *ids: AssociationId) -> Directory:
    """`directory` with `ids` paused (every association if none is named)."""
    return directory.model_copy(
        update={
            "associations": [
                a.model_copy(update={"paused": True} if not ids or a.id in ids else {})
                for a in directory.associations
            ]
        }
    )


async def test_both_tracks_queued_are_two_cases_each_assigned_within_its_kind(
    store: Store, outputs: FakeOutputs, directory: Directory, clock: Clock
) -> None:
    """A person in distress whom nobody could take: each track is queued (urgent, its own event
    id); a non-distress association is assigned the main track, without the distress answer, and
    APESA the distress track, with it."""
    await router_on(store, paused(directory), outputs, clock).on_questionnaire(
        questionnaire(**IN_DISTRESS)
    )
    queued = outputs.on("referrals.unrouted")
    assert len(queued) == 2 and all(q["urgent"] for q in queued)
    ids = [s.headers["ce_id"] for s in outputs.sent if s.topic == "referrals.unrouted"]
    assert len(set(ids)) == 2
    router = router_on(store, directory, outputs, clock)
    await router.on_assignment(assigned(SIXTY))
    await router.on_assignment(assigned(APESA))
    main, distress = outputs.on("routing.decisions")[-2:]
    assert (main["track"], main["rule"], main["primary"]) == ("main", "manual", SIXTY)
    assert main["referral"]["distress"] is None and main["referral"]["urgent"]
    assert (distress["track"], distress["rule"], distress["primary"]) == (
        "distress", "manual", APESA,
    )  # fmt: skip
    assert distress["referral"]["distress"] == "yes" and distress["referral"]["urgent"]


async def test_a_track_is_never_assigned_to_an_association_of_the_other_kind(
    store: Store, outputs: FakeOutputs, directory: Directory, clock: Clock
) -> None:
    """APESA paused: the distress track is queued while the main one is offered; assigning it
    to 60 000 rebonds is refused, as is assigning a main-track case to APESA; nothing is
    published for either."""
    router = router_on(store, paused(directory, APESA), outputs, clock)
    await router.on_questionnaire(questionnaire(**IN_DISTRESS))
    [queued] = outputs.on("referrals.unrouted")
    assert queued["urgent"] and ("offered", SIXTY) in outputs.statuses()
    published = len(outputs.sent)
    with pytest.raises(Rejected, match="not a distress association: it cannot hold the distress"):
        await router.on_assignment(assigned(SIXTY))
    assert len(outputs.sent) == published


async def test_a_main_track_case_is_not_assigned_to_apesa(
    router: Router, outputs: FakeOutputs
) -> None:
    """APESA on the main track would tell intake the distress answer: refused, nothing sent."""
    await queue_by_declines(router, outputs)
    published = len(outputs.sent)
    with pytest.raises(Rejected, match="is a distress association: it cannot hold the main"):
        await router.on_assignment(assigned(APESA))
    assert len(outputs.sent) == published


async def test_a_closure_closes_every_queued_track_of_the_case(
    store: Store, outputs: FakeOutputs, directory: Directory, clock: Clock
) -> None:
    """The closure names the case: both its queued tracks are closed, each said once."""
    router = router_on(store, paused(directory), outputs, clock)
    await router.on_questionnaire(questionnaire(**IN_DISTRESS))
    await router.on_closure(closed())
    closures = [s for s in outputs.sent if s.topic == "referrals.status"]
    assert len({s.headers["ce_id"] for s in closures}) == 2
    async with store.transaction() as tx:
        states = {r.track.value: r.state.value for r in await tx.referrals(REFERENCE)}
    assert states == {"main": "closed", "distress": "closed"}
