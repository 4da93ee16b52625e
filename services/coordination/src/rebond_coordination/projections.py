"""Projections: how facts from the other services change the console's store.

One function per fact, each a transaction, each idempotent (the fact's key decides: applying
it again leaves the same rows), so the Kafka adapter can hand them over at least once. The
pages only ever read what these wrote.
"""

from datetime import datetime

from sqlalchemy import Connection, select, update

from rebond_coordination.domain import CaseStatus, ReferralState
from rebond_coordination.facts import (
    CaseQueued,
    DirectoryObserved,
    FollowUpAnswered,
    OverrideApplied,
    ReferralOffered,
    StatisticsFact,
    StatusChanged,
    Withdrawn,
)
from rebond_coordination.store import (
    ROUTING,
    THE_PERSON,
    Store,
    insert_once,
    upsert,
    write_audit,
)
from rebond_coordination.tables import (
    cases,
    directory,
    erasures,
    follow_ups,
    overrides,
    referrals,
    stat_facts,
)

#: The router's statuses that end an association's hold on a referral, and what the inbox
#: shows for each.
_ROUTER_STATES = {
    "accepted": ReferralState.ACCEPTED,
    "declined": ReferralState.DECLINED,
    "expired": ReferralState.EXPIRED,
    "reoriented": ReferralState.MOVED_ON,
    "unrouted": ReferralState.MOVED_ON,
    "closed": ReferralState.CLOSED,
}


async def case_queued(store: Store, fact: CaseQueued) -> None:
    """A case enters (or re-enters) the human queue. A case already waiting keeps its claim;
    one that was assigned or closed and comes back waits again, unclaimed."""

    def work(connection: Connection) -> None:
        if _erased(connection, fact.reference):
            return  # the person erased their data before the case reached us
        found = connection.execute(
            select(cases.c.status, cases.c.queued_at).where(cases.c.reference == fact.reference)
        ).first()
        values = {
            "reference": fact.reference, "urgent": fact.urgent, "stage": fact.stage.value,
            "region": fact.region, "department": fact.department,
            "needs": [need.value for need in fact.needs], "cause": fact.cause.value,
            "tried": [tried.model_dump(mode="json") for tried in fact.tried],
            "contact": fact.contact.model_dump(mode="json") if fact.contact else None,
        }  # fmt: skip
        if found is None:
            connection.execute(
                cases.insert().values(**values, queued_at=fact.at, status=CaseStatus.WAITING.value)
            )
        elif found[0] == CaseStatus.WITHDRAWN.value:
            return  # the person withdrew: nothing of them comes back
        elif found[0] == CaseStatus.WAITING.value:
            connection.execute(
                update(cases).where(cases.c.reference == fact.reference).values(**values)
            )
            return
        elif fact.at > found[1]:
            connection.execute(
                update(cases)
                .where(cases.c.reference == fact.reference)
                .values(
                    **values, queued_at=fact.at, status=CaseStatus.WAITING.value,
                    claimed_by=None, claimed_at=None, assigned_to=None, outcome=None,
                    resolved_by=None, resolved_at=None,
                )
            )  # fmt: skip
        else:
            return
        write_audit(
            connection,
            fact.at,
            ROUTING,
            "case_queued",
            reference=fact.reference,
            cause=fact.cause.value,
        )

    await store.database.run(work)


def _erased(connection: Connection, reference: str) -> bool:
    """Whether the person erased their data: Kafka gives no order between topics, so an erasure
    may be read before the case or referral it concerns, which must then never be kept."""
    found = connection.execute(
        select(erasures.c.reference).where(erasures.c.reference == reference)
    )
    return found.first() is not None


async def referral_offered(store: Store, fact: ReferralOffered) -> None:
    """A referral reaches an association's inbox (once per referral id), unless its person
    erased their data before it was read."""

    def work(connection: Connection) -> None:
        if _erased(connection, fact.reference):
            return
        insert_once(
            connection,
            referrals,
            {
                "referral_id": fact.referral_id, "reference": fact.reference,
                "association_id": fact.association_id.value, "urgent": fact.urgent,
                "stage": fact.stage.value, "region": fact.region,
                "department": fact.department, "needs": [n.value for n in fact.needs],
                "contact": fact.contact.model_dump(mode="json"), "message": fact.message,
                "distress": fact.distress,
                "reasons": [reason.model_dump(mode="json") for reason in fact.reasons],
                "offered_at": fact.offered_at, "respond_by": fact.respond_by,
                "status": ReferralState.OFFERED.value, "updated_at": fact.offered_at,
                "antenna": fact.antenna,
            },
        )  # fmt: skip

    await store.database.run(work)


async def status_changed(store: Store, fact: StatusChanged) -> None:
    """The router's view of a referral: an answer given by e-mail link shows in the inbox, a
    deadline passed or a re-orientation shows the case has moved on. A state the inbox set
    itself (an answer given here) is not overwritten by the echo of the same answer."""
    state = _ROUTER_STATES.get(fact.status)
    if state is None or fact.referral_id is None:
        return

    def work(connection: Connection) -> None:
        values: dict[str, object] = {"status": state.value, "updated_at": fact.at}
        if state in (ReferralState.ACCEPTED, ReferralState.DECLINED):
            values |= {
                "decline_reason": fact.reason.value if fact.reason else None,
                "answered_at": fact.at,
            }
        if state is ReferralState.ACCEPTED:
            values |= {"call_by": fact.call_by, "caller": fact.caller}
        connection.execute(
            update(referrals)
            .where(
                referrals.c.referral_id == fact.referral_id,
                referrals.c.status.in_(_may_become(state)),
            )
            .values(**values)
        )

    await store.database.run(work)


def _may_become(state: ReferralState) -> list[str]:
    """The states a referral may be in for the router's `state` to apply: answers only to an
    open offer; moving on or closing from anything but withdrawn."""
    if state in (ReferralState.ACCEPTED, ReferralState.DECLINED, ReferralState.EXPIRED):
        return [ReferralState.OFFERED.value]
    return [s.value for s in ReferralState if s not in (ReferralState.WITHDRAWN, state)]


async def withdrawn(store: Store, fact: Withdrawn) -> None:
    """The person erased their data: every referral and queue case of the reference keeps only
    its ids and status "withdrawn"; contact, message, distress, needs and stage are deleted.
    The department stays so an antenna still sees that its case was withdrawn. The reference
    is remembered (`erasures`), so a case or referral read after this is dropped."""

    def work(connection: Connection) -> None:
        insert_once(connection, erasures, {"reference": fact.reference, "erased_at": fact.at})
        connection.execute(
            update(referrals)
            .where(referrals.c.reference == fact.reference)
            .values(
                status=ReferralState.WITHDRAWN.value, contact=None, message=None, distress=None,
                needs=None, stage=None, comment=None, withdrawn_at=fact.at, updated_at=fact.at,
            )
        )  # fmt: skip
        connection.execute(
            update(cases)
            .where(cases.c.reference == fact.reference)
            .values(
                status=CaseStatus.WITHDRAWN.value, contact=None, needs=None, stage=None,
                tried=[], note=None, claimed_by=None, claimed_at=None,
            )
        )  # fmt: skip
        write_audit(connection, fact.at, THE_PERSON, "withdrawn", reference=fact.reference)

    await store.database.run(work)


async def directory_observed(store: Store, fact: DirectoryObserved) -> None:
    """An association's effective values as the router applies them (the newest wins)."""

    def work(connection: Connection) -> None:
        known = connection.execute(
            select(directory.c.observed_at).where(
                directory.c.association_id == fact.association_id.value
            )
        ).scalar()
        if known is not None and known >= fact.at:
            return
        _set_values(
            connection,
            fact.association_id.value,
            fact.values.model_dump(),
            fact.rule_set_version,
            fact.at,
        )

    await store.database.run(work)


async def override_applied(store: Store, fact: OverrideApplied) -> None:
    """The router applied an override: it stops showing "en attente", and the values it gave
    become the association's."""

    def work(connection: Connection) -> None:
        done = connection.execute(
            update(overrides)
            .where(overrides.c.id == fact.override_id, overrides.c.applied_at.is_(None))
            .values(applied_at=fact.at)
        ).rowcount
        if not done:
            return
        version = connection.execute(
            select(directory.c.rule_set_version).where(
                directory.c.association_id == fact.association_id.value
            )
        ).scalar()
        _set_values(
            connection, fact.association_id.value, fact.values.model_dump(),
            fact.rule_set_version or version or "—", fact.at,
        )  # fmt: skip
        write_audit(
            connection, fact.at, ROUTING, "override_applied",
            association_id=fact.association_id.value, subject=fact.override_id,
        )  # fmt: skip

    await store.database.run(work)


async def follow_up_answered(store: Store, fact: FollowUpAnswered) -> None:
    """The person's follow-up answer, once per referral; a "no" shows on the referral and on
    the queue case (the router puts the case back in the queue for it). With the person's
    consent to statistics, and only then, it is also one anonymous fact (`_follow_up_fact`),
    in the same transaction: counted once, as the answer is recorded once."""

    def work(connection: Connection) -> None:
        if _erased(connection, fact.reference):
            return
        row = {
            "referral_id": fact.referral_id, "reference": fact.reference,
            "association_id": fact.association_id.value, "contacted": fact.contacted,
            "answered_at": fact.at,
        }  # fmt: skip
        if insert_once(connection, follow_ups, row):
            write_audit(
                connection, fact.at, THE_PERSON, "follow_up_answered",
                association_id=fact.association_id.value, reference=fact.reference,
                subject=fact.referral_id, contacted=fact.contacted,
            )  # fmt: skip
            if fact.statistics_consent:
                insert_once(connection, stat_facts, _follow_up_fact(connection, fact))

    await store.database.run(work)


def _follow_up_fact(connection: Connection, fact: FollowUpAnswered) -> dict[str, object]:
    """The answer as a statistics fact: its association, and the region and stage of the
    referral it answers (as offered; unknown if the console never saw it). No reference."""
    offered = connection.execute(
        select(referrals.c.region, referrals.c.stage).where(
            referrals.c.referral_id == fact.referral_id
        )
    ).first()
    return {
        "fact_id": f"followup:{fact.referral_id}",
        "kind": "followup_contacted" if fact.contacted else "followup_not_contacted",
        "at": fact.at, "region": offered.region if offered else None,
        "stage": offered.stage if offered else None,
        "association_id": fact.association_id.value, "reason": None, "seconds_to_answer": None,
    }  # fmt: skip


def _set_values(
    connection: Connection, association: str, values: dict[str, object], version: str, at: datetime
) -> None:
    upsert(
        connection,
        directory,
        {"association_id": association, **values, "rule_set_version": version, "observed_at": at},
        ["association_id"],
    )


async def statistics_fact(store: Store, fact: StatisticsFact) -> bool:
    """Keep an anonymous fact for the statistics; one without consent is dropped (whoever sent
    it). Whether it was kept."""
    if not fact.consented:
        return False
    row = {
        "fact_id": fact.fact_id, "kind": fact.kind, "at": fact.at,
        "region": fact.region,
        "stage": fact.stage.value if fact.stage else None,
        "association_id": fact.association_id.value if fact.association_id else None,
        "reason": fact.reason.value if fact.reason else None,
        "seconds_to_answer": fact.seconds_to_answer,
    }  # fmt: skip
    return await store.database.run(lambda c: insert_once(c, stat_facts, row))
