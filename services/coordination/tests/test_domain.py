"""The console's pure rules: queue order, claims, answers against the deadline, outcomes."""

from datetime import UTC, date, datetime, timedelta

import pytest

from rebond_coordination.domain import (
    CAUSE_LABELS,
    AnswerVerdict,
    CaseStatus,
    Cause,
    ClaimVerdict,
    Outcome,
    QueueEntry,
    ReferralState,
    answer_verdict,
    claim_verdict,
    outcome_error,
    queue_order,
)

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CLAIM = timedelta(minutes=30)


def test_urgent_cases_come_first_then_the_oldest() -> None:
    """Urgent before normal whatever their age; within each, the longest waiting first."""
    entries = [
        QueueEntry("RB-N-NEW", False, T0 + HOUR, CaseStatus.WAITING),
        QueueEntry("RB-U-NEW", True, T0 + 2 * HOUR, CaseStatus.WAITING),
        QueueEntry("RB-N-OLD", False, T0 - 5 * HOUR, CaseStatus.WAITING),
        QueueEntry("RB-U-OLD", True, T0, CaseStatus.WAITING),
    ]
    assert [e.reference for e in sorted(entries, key=queue_order)] == [
        "RB-U-OLD", "RB-U-NEW", "RB-N-OLD", "RB-N-NEW",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "holder", "claimed_at", "now", "expected"),
    [
        (CaseStatus.WAITING, None, None, T0, ClaimVerdict.FREE),
        (CaseStatus.WAITING, "me", T0, T0 + timedelta(minutes=5), ClaimVerdict.MINE),
        (CaseStatus.WAITING, "other", T0, T0 + timedelta(minutes=29), ClaimVerdict.HELD),
        (CaseStatus.WAITING, "other", T0, T0 + CLAIM, ClaimVerdict.FREE),  # lapsed
        (CaseStatus.ASSIGNED, None, None, T0, ClaimVerdict.CLOSED),
        (CaseStatus.CLOSED, "me", T0, T0, ClaimVerdict.CLOSED),
        (CaseStatus.WITHDRAWN, None, None, T0, ClaimVerdict.CLOSED),
    ],
)
def test_who_may_work_on_a_case(
    status: CaseStatus, holder: str | None, claimed_at: datetime | None, now: datetime,
    expected: ClaimVerdict,
) -> None:  # fmt: skip
    """One holder at a time; a claim lapses after its time; a case not waiting is not claimable."""
    entry = QueueEntry("RB-1", False, T0, status, holder, claimed_at)
    assert claim_verdict(entry, "me", now, CLAIM) is expected


@pytest.mark.parametrize(
    ("state", "respond_by", "now", "expected"),
    [
        (ReferralState.OFFERED, T0 + HOUR, T0, AnswerVerdict.OK),
        (ReferralState.OFFERED, None, T0, AnswerVerdict.OK),
        (ReferralState.OFFERED, T0 + HOUR, T0 + HOUR, AnswerVerdict.LATE),
        (ReferralState.OFFERED, T0, T0 + HOUR, AnswerVerdict.LATE),
        (ReferralState.ACCEPTED, T0 + HOUR, T0, AnswerVerdict.ANSWERED),
        (ReferralState.DECLINED, T0 + HOUR, T0, AnswerVerdict.ANSWERED),
        (ReferralState.MOVED_ON, T0 + HOUR, T0, AnswerVerdict.GONE),
        (ReferralState.WITHDRAWN, T0 + HOUR, T0, AnswerVerdict.GONE),
        (ReferralState.EXPIRED, T0 + HOUR, T0, AnswerVerdict.GONE),
    ],
)
def test_an_answer_is_taken_only_for_an_open_offer_before_its_deadline(
    state: ReferralState, respond_by: datetime | None, now: datetime, expected: AnswerVerdict
) -> None:
    """Late, already answered, or gone elsewhere: each refused with its own reason."""
    assert answer_verdict(state, respond_by, now) is expected


@pytest.mark.parametrize(
    ("state", "outcome", "on", "refused"),
    [
        (ReferralState.ACCEPTED, Outcome.CONTACTED, date(2026, 12, 7), False),
        (ReferralState.ACCEPTED, Outcome.CONTACTED, None, True),
        (ReferralState.ACCEPTED, Outcome.CONTACTED, date(2026, 12, 8), True),  # the future
        (ReferralState.ACCEPTED, Outcome.UNREACHABLE, None, False),
        (ReferralState.OFFERED, Outcome.CLOSED, None, True),
        (ReferralState.DECLINED, Outcome.ACCOMPANIMENT_STARTED, None, True),
    ],
)
def test_an_outcome_follows_an_acceptance_and_a_contact_has_a_past_date(
    state: ReferralState, outcome: Outcome, on: date | None, refused: bool
) -> None:
    """Outcomes only after accepting; "contacted" needs its date, not in the future."""
    assert (outcome_error(state, outcome, on, date(2026, 12, 7)) is not None) is refused


def test_a_labelled_choice_is_its_value_and_carries_its_label() -> None:
    """Stored, sent and looked up by its value alone; the pages show its label."""
    assert Cause("all_declined_or_expired") is Cause.ALL_DECLINED
    assert Cause.ALL_DECLINED.value == "all_declined_or_expired" == Cause.ALL_DECLINED
    assert Cause.ALL_DECLINED.label == "Toutes les associations ont décliné ou n'ont pas répondu"
    assert (
        list(CAUSE_LABELS) == list(Cause)
        and CAUSE_LABELS[Cause.EXPIRED] == "Délai de réponse dépassé"
    )
    with pytest.raises(ValueError):
        Cause("Délai de réponse dépassé")
