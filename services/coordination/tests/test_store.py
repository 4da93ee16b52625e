"""The store on SQLite and PostgreSQL: concurrent claims, scoped queries, answers against the
deadline, one-time invitations, and every action written with its audit entry and message in
one transaction."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from rebond_contracts.payloads import new_reference
from rebond_coordination import projections
from rebond_coordination.domain import AnswerVerdict, CaseStatus, ClaimVerdict, Role
from rebond_coordination.facts import (
    DirectoryObserved,
    EffectiveValues,
    FollowUpAnswered,
    OverrideApplied,
    StatisticsFact,
    StatusChanged,
    Withdrawn,
)
from rebond_coordination.policy import Scope
from rebond_coordination.ports import CaseAssigned, DirectoryOverride
from rebond_coordination.store import NewUser, ReferralRow, Refused, Store, new_id

from .conftest import START, offer, queue_case

CLAIM = timedelta(minutes=30)


async def coordinator(store: Store, email: str) -> Scope:
    user_id = await store.create_user(
        NewUser(email, email.split("@")[0], Role.COORDINATOR), "hash", None, START
    )
    found = await store.user(user_id)
    assert found is not None
    return found.scope


def member(association: str, departments: set[str] | None = None) -> Scope:
    return Scope(
        new_id(), "Marc", Role.MEMBER, association, frozenset(departments) if departments else None
    )


def assign(scope: Scope, reference: str, message_id: str | None = None) -> CaseAssigned:
    return CaseAssigned(
        message_id=message_id or new_id(), at=START, reference=reference,
        association_id="second-souffle", note="", coordinator_id=scope.user_id,
    )  # fmt: skip


async def test_of_concurrent_claims_exactly_one_wins_and_the_other_learns_who(store: Store) -> None:
    """Ten rounds of two coordinators claiming the same case at once: one MINE, one HELD
    naming the winner, every time."""
    alice, bruno = (
        await coordinator(store, "alice@rebond.test"),
        await coordinator(store, "bruno@rebond.test"),
    )
    for _ in range(10):
        reference = await queue_case(store)
        results = await asyncio.gather(
            store.claim(alice, reference, START, CLAIM), store.claim(bruno, reference, START, CLAIM)
        )
        verdicts = sorted(r.verdict.value for r in results if r)
        assert verdicts == [ClaimVerdict.HELD.value, ClaimVerdict.MINE.value]
        winner = next(r for r in results if r and r.verdict is ClaimVerdict.MINE)
        loser = next(r for r in results if r and r.verdict is ClaimVerdict.HELD)
        assert loser.holder_name == winner.holder_name
        case = await store.case(alice, reference)
        assert case is not None and case.claimed_by_name == winner.holder_name


async def test_a_lapsed_claim_can_be_taken_over(store: Store) -> None:
    """After the claim's time, another coordinator may take the case."""
    alice, bruno = (
        await coordinator(store, "alice@rebond.test"),
        await coordinator(store, "bruno@rebond.test"),
    )
    reference = await queue_case(store)
    await store.claim(alice, reference, START, CLAIM)
    held = await store.claim(bruno, reference, START + timedelta(minutes=10), CLAIM)
    assert held is not None and held.verdict is ClaimVerdict.HELD
    taken = await store.claim(bruno, reference, START + CLAIM, CLAIM)
    assert taken is not None and taken.verdict is ClaimVerdict.MINE


async def test_assigning_needs_the_claim_and_a_stale_case_says_where_it_went(store: Store) -> None:
    """Unclaimed: refused; claimed: assigned, audited and queued in one go; again: "déjà
    attribué à Second Souffle"."""
    alice = await coordinator(store, "alice@rebond.test")
    reference = await queue_case(store)
    with pytest.raises(Refused, match="Prenez d'abord"):
        await store.resolve(alice, reference, START, status=CaseStatus.ASSIGNED, message=assign(alice, reference),
                            association_id="second-souffle")  # fmt: skip
    await store.claim(alice, reference, START, CLAIM)
    case = await store.resolve(alice, reference, START, status=CaseStatus.ASSIGNED,
                               message=assign(alice, reference), association_id="second-souffle")  # fmt: skip
    assert case is not None and case.status == "assigned" and case.assigned_to == "second-souffle"
    assert [m[1]["kind"] for m in await store.pending_messages()] == ["assign"]
    actions = [e.action for e in await store.audit(alice)]
    assert actions[0] == "case_assigned"
    with pytest.raises(Refused, match="déjà été attribué à Second Souffle"):
        await store.resolve(alice, reference, START, status=CaseStatus.ASSIGNED, message=assign(alice, reference),
                            association_id="second-souffle")  # fmt: skip


async def test_an_action_whose_message_cannot_be_written_leaves_no_change_and_no_audit(
    store: Store,
) -> None:
    """The change, its audit entry and its outbox row commit together or not at all."""
    alice = await coordinator(store, "alice@rebond.test")
    first, second = await queue_case(store), await queue_case(store)
    for reference in (first, second):
        await store.claim(alice, reference, START, CLAIM)
    await store.resolve(alice, first, START, status=CaseStatus.ASSIGNED, message=assign(alice, first, "same-id"),
                        association_id="second-souffle")  # fmt: skip
    with pytest.raises(IntegrityError):
        await store.resolve(alice, second, START, status=CaseStatus.ASSIGNED,
                            message=assign(alice, second, "same-id"), association_id="second-souffle")  # fmt: skip
    case = await store.case(alice, second)
    assert case is not None and case.status == "waiting" and case.claimed_by == alice.user_id
    assert [e.reference for e in await store.audit(alice) if e.action == "case_assigned"] == [first]


async def test_members_see_their_association_and_antenna_limited_members_their_departments(
    store: Store,
) -> None:
    """Bordeaux (33) and Lyon (69) cases of 60 000 rebonds, one of Second Souffle: each scope
    loads exactly its own, and another's id reads as nothing."""
    bordeaux, _ = await offer(store, "60000-rebonds", "33")
    lyon, _ = await offer(store, "60000-rebonds", "69")
    unknown_department, _ = await offer(store, "60000-rebonds", None)
    elsewhere, _ = await offer(store, "second-souffle", "33")
    whole = member("60000-rebonds")
    gironde = member("60000-rebonds", {"33", "24"})
    other = member("second-souffle")
    assert {r.referral_id for r in await store.inbox(whole)} == {bordeaux, lyon, unknown_department}
    assert {r.referral_id for r in await store.inbox(gironde)} == {bordeaux}
    assert {r.referral_id for r in await store.inbox(other)} == {elsewhere}
    assert await store.referral(gironde, lyon) is None
    assert await store.referral(other, bordeaux) is None
    assert await store.referral(whole, bordeaux) is not None
    organiser = Scope(new_id(), "Olga", Role.ORGANISER, "60000-rebonds")
    assert await store.inbox(organiser) == []
    assert (
        await store.queue(whole) == [] and await store.case(whole, "RB-0000-0000-0000-0000") is None
    )


async def test_the_inbox_puts_urgent_first_then_the_newest(store: Store) -> None:
    """Urgent referrals first, then by arrival, newest first."""
    old, _ = await offer(store, at=START)
    new, _ = await offer(store, at=START + timedelta(hours=2))
    urgent_old, _ = await offer(store, at=START - timedelta(days=1), urgent=True)
    assert [r.referral_id for r in await store.inbox(member("60000-rebonds"))] == [
        urgent_old,
        new,
        old,
    ]


async def test_an_answer_after_the_deadline_or_after_the_email_link_is_refused(
    store: Store,
) -> None:
    """Before the deadline: taken (audited, queued). After it: LATE. Once the e-mail link's
    answer arrived through the router: ANSWERED."""
    scope = member("60000-rebonds")
    on_time, ref1 = await offer(store, respond_by=START + timedelta(days=1))
    late, _ = await offer(store, respond_by=START + timedelta(hours=1))
    by_link, ref3 = await offer(store, respond_by=START + timedelta(days=1))

    async def accept(
        referral_id: str, reference: str, at: datetime = START
    ) -> tuple[ReferralRow, AnswerVerdict] | None:
        return await store.answer(
            scope, referral_id, at, accept=True, reason=None, comment=None,
            message=assign(scope, reference),
        )  # fmt: skip

    done = await accept(on_time, ref1)
    assert done is not None and done[1] is AnswerVerdict.OK and done[0].status == "accepted"
    result = await accept(late, ref1, START + timedelta(hours=1))
    assert result is not None and result[1] is AnswerVerdict.LATE
    await projections.status_changed(
        store, StatusChanged(reference=ref3, referral_id=by_link, association_id="60000-rebonds",
                             status="declined", reason="no_capacity", at=START)
    )  # fmt: skip
    again = await accept(by_link, ref3)
    assert again is not None and again[1] is AnswerVerdict.ANSWERED
    assert again[0].status == "declined" and again[0].answered_by is None  # the link's answer
    assert len(await store.pending_messages()) == 1


async def test_a_withdrawal_deletes_every_personal_detail_and_keeps_the_case_away(
    store: Store,
) -> None:
    """Contact, message, needs and stage are gone from the inbox and the queue; the same
    referral offered again later does not bring them back."""
    referral_id, reference = await offer(store)
    await queue_case(store, ref=reference)
    await projections.withdrawn(store, Withdrawn(reference=reference, at=START))
    found = await store.referral(member("60000-rebonds"), referral_id)
    assert found is not None and found.status == "withdrawn"
    assert (found.contact, found.message, found.needs, found.stage, found.distress) == (
        None,
        None,
        None,
        None,
        None,
    )
    alice = await coordinator(store, "alice@rebond.test")
    case = await store.case(alice, reference)
    assert (
        case is not None
        and case.status == "withdrawn"
        and case.contact is None
        and case.tried == []
    )
    await offer(store, ref=reference)
    await queue_case(store, ref=reference, at=START + timedelta(hours=1))
    assert [r.status for r in await store.inbox(member("60000-rebonds"))] == ["withdrawn"]
    case = await store.case(alice, reference)
    assert case is not None and case.status == "withdrawn"


async def test_projections_applied_twice_change_nothing_the_second_time(store: Store) -> None:
    """A redelivered case, referral or statistics fact leaves one row; an unconsented fact
    none."""
    reference = await queue_case(store)
    await queue_case(store, ref=reference)
    referral_id, ref = await offer(store)
    await offer(store, ref=ref, referral_id=referral_id)
    fact = StatisticsFact(fact_id="f-1", kind="offered", at=START, consented=True, region="75",
                          stage="unsure", association_id="apesa")  # fmt: skip
    assert await projections.statistics_fact(store, fact)
    assert not await projections.statistics_fact(store, fact)
    refused = fact.model_copy(update={"fact_id": "f-2", "consented": False})
    assert not await projections.statistics_fact(store, refused)
    assert (
        await store.count("cases"),
        await store.count("referrals"),
        await store.count("stat_facts"),
    ) == (1, 1, 1)


async def test_an_override_stays_pending_until_the_router_applies_it(store: Store) -> None:
    """Requested: pending, audited, queued. Applied: the router's values become current."""
    alice = await coordinator(store, "alice@rebond.test")
    await projections.directory_observed(store, DirectoryObserved(
        association_id="60000-rebonds", rule_set_version="2026.11-1", at=START,
        values=EffectiveValues(paused=False, weekly_capacity=12, response_deadline_days=10),
    ))  # fmt: skip
    override = DirectoryOverride(
        message_id=new_id(),
        at=START,
        association_id="60000-rebonds",
        paused=True,
        set_by=alice.user_id,
    )
    await store.request_override(alice, override, START)
    values, overrides = await store.directory()
    assert values["60000-rebonds"].paused is False and overrides[0].applied_at is None
    later = START + timedelta(seconds=3)
    await projections.override_applied(store, OverrideApplied(
        override_id=override.message_id, association_id="60000-rebonds", at=later,
        values=EffectiveValues(paused=True, weekly_capacity=12, response_deadline_days=10),
    ))  # fmt: skip
    values, overrides = await store.directory()
    assert (
        values["60000-rebonds"].paused is True
        and values["60000-rebonds"].rule_set_version == "2026.11-1"
    )
    assert overrides[0].applied_at == later and later.tzinfo is UTC
    assert [e.action for e in await store.audit(alice)][:2] == [
        "override_applied",
        "override_requested",
    ]


async def test_the_audit_log_lists_entries_by_their_time_newest_first(store: Store) -> None:
    """A case projected after later actions, from an older record, carries its own time and
    is listed below them; entries of one instant, the latest written first."""
    alice = await coordinator(store, "alice@rebond.test")
    later = START + timedelta(hours=2)
    await store.log(alice, "preview_run", later)
    reference = await queue_case(store, at=START)  # read late: its record is older
    await store.log(alice, "statistics_exported", START + timedelta(hours=1))
    await store.log(alice, "registrations_exported", START + timedelta(hours=1))
    entries = await store.audit(alice)
    assert [(e.action, e.at) for e in entries] == [
        ("preview_run", later),
        ("registrations_exported", START + timedelta(hours=1)),
        ("statistics_exported", START + timedelta(hours=1)),
        ("case_queued", START),
        ("user_created", START),  # Alice's account, written before the case
    ]
    assert entries[3].reference == reference


async def test_the_journal_names_who_acted_when_nobody_signed_in_did(store: Store) -> None:
    """An account made on the command line, a refused sign-in, a case the router queued and a
    person's own withdrawal each name who acted, not all "ligne de commande"."""
    alice = await coordinator(store, "alice@rebond.test")  # `add-user`: no actor
    await store.sign_in_failed(alice.user_id, START, threshold=1, lock_for=timedelta(minutes=5))
    reference = await queue_case(store, at=START + timedelta(minutes=1))
    await projections.withdrawn(
        store, Withdrawn(reference=reference, at=START + timedelta(hours=1))
    )
    await store.log(alice, "preview_run", START + timedelta(hours=2))
    named = {e.action: e.actor_name for e in await store.audit(alice)}
    assert named == {
        "user_created": "ligne de commande",
        "sign_in_failed": "quelqu'un de non connecté",
        "account_locked": "quelqu'un de non connecté",
        "case_queued": "orientation automatique",
        "withdrawn": "la personne accompagnée",
        "preview_run": "alice",
    }


async def test_an_override_carries_the_live_values_of_the_previous_one(store: Store) -> None:
    """A capacity changed after a pause keeps the pause in what is sent (the router keeps only
    the latest override per association); what the coordinator changed is what is audited."""
    alice = await coordinator(store, "alice@rebond.test")

    def override(**values: object) -> DirectoryOverride:
        return DirectoryOverride.model_validate({
            "message_id": new_id(), "at": START, "association_id": "60000-rebonds",
            "set_by": alice.user_id, **values,
        })  # fmt: skip

    await store.request_override(alice, override(paused=True), START)
    await store.request_override(alice, override(weekly_capacity=20), START + CLAIM)
    await store.request_override(alice, override(paused=False), START + 2 * CLAIM)
    sent = [payload for _, payload in await store.pending_messages()]
    assert [(m["paused"], m["weekly_capacity"]) for m in sent] == [
        (True, None), (True, 20), (False, 20),
    ]  # fmt: skip
    [latest, *_] = [e for e in await store.audit(alice) if e.action == "override_requested"]
    assert latest.detail == {
        "paused": False,
        "weekly_capacity": None,
        "response_deadline_days": None,
    }


async def test_an_invitation_link_works_once_and_not_after_it_expires(store: Store) -> None:
    """The first use sets the password and activates the account; a second use, or a use after
    expiry, finds nothing."""
    alice = await coordinator(store, "alice@rebond.test")
    new = NewUser("nina@60000rebonds.test", "Nina", Role.MEMBER, "60000-rebonds", ["33"])
    await store.invite(alice, new, "hash-1", START, timedelta(hours=72))
    assert (await store.invitation("hash-1", START)) is not None
    accepted = await store.accept_invitation("hash-1", START, "argon-hash", None)
    assert accepted is not None and accepted.active and accepted.departments == ["33"]
    assert await store.accept_invitation("hash-1", START, "other", None) is None
    other = NewUser("omar@60000rebonds.test", "Omar", Role.MEMBER, "60000-rebonds")
    await store.invite(alice, other, "hash-2", START, timedelta(hours=72))
    assert await store.accept_invitation("hash-2", START + timedelta(hours=72), "x", None) is None


async def test_a_totp_time_step_opens_one_session_only(store: Store) -> None:
    """Two sign-ins with the same code's step: the second writes nothing."""
    user_id = await store.create_user(
        NewUser("t@rebond.test", "T", Role.COORDINATOR), "hash", None, START, totp_secret="S" * 32
    )
    user = await store.user(user_id)
    assert user is not None
    assert await store.open_session(user, "token-1", "csrf", START, totp_counter=100)
    assert not await store.open_session(user, "token-2", "csrf", START, totp_counter=100)
    assert await store.session("token-2") is None
    assert await store.open_session(user, "token-3", "csrf", START, totp_counter=101)


async def test_an_erasure_read_before_its_case_drops_the_case_and_referral_read_later(
    store: Store,
) -> None:
    """Kafka gives no order between topics: an erasure read first is remembered by reference,
    so the queue case, the referral and the follow-up of that person read afterwards are
    dropped, and another person's case still arrives."""
    alice = await coordinator(store, "alice@rebond.test")
    erased = new_reference()
    await projections.withdrawn(store, Withdrawn(reference=erased, at=START))
    await projections.withdrawn(store, Withdrawn(reference=erased, at=START))  # a repeat
    await queue_case(store, START + timedelta(minutes=1), ref=erased)
    referral_id, _ = await offer(store, at=START + timedelta(minutes=1), ref=erased)
    await projections.follow_up_answered(store, FollowUpAnswered(
        reference=erased, referral_id=referral_id, association_id="60000-rebonds",
        contacted=False, at=START + timedelta(minutes=2),
    ))  # fmt: skip
    assert await store.case(alice, erased) is None
    assert await store.referral(alice, referral_id) is None
    assert await store.follow_ups(alice, erased) == []
    other = await queue_case(store, START + timedelta(minutes=1))
    assert [case.reference for case in await store.queue(alice)] == [other]


async def test_a_follow_up_is_kept_once_and_seen_only_by_its_association(store: Store) -> None:
    """The person's "not contacted" is kept once however often it is read; the coordinator and
    the referral's association see it, another association does not."""
    alice = await coordinator(store, "alice@rebond.test")
    marc_id = await store.create_user(
        NewUser("marc@60000.test", "Marc", Role.MEMBER, "60000-rebonds"), "hash", None, START
    )
    sam_id = await store.create_user(
        NewUser("sam@souffle.test", "Sam", Role.MEMBER, "second-souffle"), "hash", None, START
    )
    referral_id, ref = await offer(store)
    answer = FollowUpAnswered(
        reference=ref, referral_id=referral_id, association_id="60000-rebonds", contacted=False,
        at=START + timedelta(days=30),
    )  # fmt: skip
    await projections.follow_up_answered(store, answer)
    await projections.follow_up_answered(store, answer)
    found = await store.follow_ups(alice, ref)
    assert [(f.referral_id, f.contacted) for f in found] == [(referral_id, False)]
    marc, sam = await store.user(marc_id), await store.user(sam_id)
    assert marc is not None and sam is not None
    assert len(await store.follow_ups(marc.scope, ref)) == 1
    assert await store.follow_ups(sam.scope, ref) == []
    audited = [e.action for e in await store.audit(alice)]
    assert audited.count("follow_up_answered") == 1
