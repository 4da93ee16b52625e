"""The anonymous facts for the grouping's statistics (`statistics.facts`, issue 21), read off
the referral's transitions on a real store: what is counted, for whom, and what a fact holds."""

from typing import Any
from uuid import UUID

from rebond_contracts.payloads import (
    DeclineReason,
    OutcomeKind,
    ReferralOutcomeV1,
)
from rebond_contracts.topics import QUESTIONNAIRES, responses
from rebond_router.lifecycle import Router

from .conftest import (
    NOW,
    REFERENCE,
    SIXTY,
    SOUFFLE,
    Clock,
    FakeOutputs,
    answer,
    current_referral,
    questionnaire,
    submitted,
)


def facts(outputs: FakeOutputs) -> list[tuple[Any, ...]]:
    """Each fact as (kind, association, reason, seconds to answer, day)."""
    return [
        (f["kind"], f["association_id"], f["reason"], f["seconds_to_answer"], f["day"])
        for f in outputs.on("statistics.facts")
    ]


async def test_each_step_of_a_consenting_persons_referral_is_counted_once(
    router: Router, outputs: FakeOutputs, clock: Clock
) -> None:
    """Offered, declined (with its reason and how long it took), offered to the next, accepted,
    then the outcome the association reports: one fact each (the follow-up's answer is not
    counted here: the console counts it from `referrals.followups`), by day, keyed by
    association, with no reference, contact or time of day anywhere in the record."""
    await router.on_questionnaire(questionnaire())
    clock.advance(hours=2)
    decline = answer(SIXTY, current_referral(outputs), "r-1", DeclineReason.NOT_ELIGIBLE)
    await router.on_response(SIXTY, decline)
    await router.on_response(SIXTY, decline)  # redelivered: nothing more
    clock.advance(days=1, hours=1)
    await router.on_response(SOUFFLE, answer(SOUFFLE, current_referral(outputs), "r-2"))
    referral_id = UUID(current_referral(outputs))
    report = ReferralOutcomeV1(
        referral_id=referral_id, reference=REFERENCE, outcome=OutcomeKind.CONTACTED,
        on=clock.now.date(), recorded_at=clock.now,
    )  # fmt: skip
    for _ in range(2):  # redelivered: counted once
        await router.on_outcome(
            SOUFFLE,
            responses(SOUFFLE).envelope(
                report, subject=REFERENCE, correlationid=REFERENCE, id="o-1"
            ),
        )
    clock.advance(days=30)
    assert await router.check_deadlines() == 0  # a reported contact: no follow-up
    today, tomorrow = "2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z"
    assert facts(outputs) == [
        ("offered", SIXTY, None, None, today),
        ("declined", SIXTY, "not_eligible", 7200.0, today),
        ("offered", SOUFFLE, None, None, today),
        ("accepted", SOUFFLE, None, 90000.0, tomorrow),
        ("outcome_contacted", SOUFFLE, None, None, tomorrow),
    ]
    sent = [s for s in outputs.sent if s.topic == "statistics.facts"]
    assert [s.key for s in sent] == [SIXTY, SIXTY, SOUFFLE, SOUFFLE, SOUFFLE]
    for record in sent:
        assert REFERENCE not in str(record) and "Claire" not in str(record)
        assert (record.data["region"], record.data["stage"]) == ("75", "after_liquidation")
    assert today.startswith(NOW.date().isoformat())


async def test_nothing_is_counted_without_consent_nor_on_the_distress_track(
    router: Router, outputs: FakeOutputs
) -> None:
    """A person who refused the statistics gives no fact; one in distress (APESA's track
    beside the main one) gives the main track's facts only."""
    await router.on_questionnaire(questionnaire("e-1", consents__statistics=False))
    assert outputs.on("statistics.facts") == []
    other = "RB-0HCK-9645-C57J-B5Q9"
    in_distress = submitted(other, distress="yes", consents__sensitive_data=True)
    await router.on_questionnaire(
        QUESTIONNAIRES.envelope(in_distress, subject=other, correlationid=other, id="e-2")
    )
    assert {d["track"] for d in outputs.on("routing.decisions")} == {"main", "distress"}
    assert [f[:2] for f in facts(outputs)] == [("offered", SIXTY)]
