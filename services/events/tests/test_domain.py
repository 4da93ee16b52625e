"""Pure rules: seats, waitlist promotion, invitation choice, Paris time, signed links."""

from datetime import UTC, datetime, timedelta

import pytest

from rebond_events.domain import (
    PARIS,
    Candidate,
    RegistrationStatus,
    cancel_token,
    choose_invitation,
    email_digest,
    seats_left,
    status_for_newcomer,
    to_paris,
    to_promote,
    to_utc_naive,
    valid_cancel_token,
)

CONFIRMED, WAITLISTED = RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED


@pytest.mark.parametrize(
    ("capacity", "confirmed", "left", "newcomer"),
    [
        (10, 0, 10, CONFIRMED),
        (10, 9, 1, CONFIRMED),
        (10, 10, 0, WAITLISTED),
        (1, 0, 1, CONFIRMED),
        (1, 1, 0, WAITLISTED),
        (5, 8, 0, WAITLISTED),  # capacity lowered below the confirmed: nobody is bumped
    ],
)
def test_seat_counting(
    capacity: int, confirmed: int, left: int, newcomer: RegistrationStatus
) -> None:
    """Seats left never go negative and a newcomer is confirmed only while one is free."""
    assert seats_left(capacity, confirmed) == left
    assert status_for_newcomer(capacity, confirmed) == newcomer


@pytest.mark.parametrize(
    ("capacity", "confirmed", "waitlist", "promoted"),
    [
        (10, 10, ["a", "b"], []),
        (10, 9, ["a", "b"], ["a"]),
        (10, 7, ["a", "b"], ["a", "b"]),
        (10, 9, [], []),
        (3, 5, ["a"], []),
    ],
)
def test_promotion_is_first_come_first_served(
    capacity: int, confirmed: int, waitlist: list[str], promoted: list[str]
) -> None:
    """Free seats go to the head of the waitlist, as many as there are seats."""
    assert to_promote(capacity, confirmed, waitlist) == promoted


NOW = datetime(2027, 1, 1, 12, tzinfo=UTC)


def c(event_id: str, days: int, department: str, region: str) -> Candidate:
    return Candidate(event_id, NOW + timedelta(days=days), department, region)


@pytest.mark.parametrize(
    ("candidates", "department", "region", "expected"),
    [
        (
            [c("near", 20, "33", "75"), c("region", 5, "64", "75")],
            "33",
            "75",
            ("near", "department"),
        ),
        ([c("d1", 20, "33", "75"), c("d2", 10, "33", "75")], "33", "75", ("d2", "department")),
        (
            [c("region", 5, "64", "75"), c("elsewhere", 1, "75", "11")],
            "33",
            "75",
            ("region", "region"),
        ),
        ([c("region", 5, "64", "75")], None, "75", ("region", "region")),
        ([c("past", -1, "33", "75")], "33", "75", None),
        ([c("other", 3, "75", "11")], "33", "75", None),
        ([], "33", "75", None),
    ],
)
def test_invitation_goes_to_the_next_event_in_the_department_else_the_region(
    candidates: list[Candidate],
    department: str | None,
    region: str,
    expected: tuple[str, str] | None,
) -> None:
    """The soonest upcoming event of the department wins; else the soonest of the region."""
    chosen = choose_invitation(candidates, department, region, NOW)
    assert (None if chosen is None else (chosen[0].event_id, chosen[1])) == expected


@pytest.mark.parametrize(
    ("given", "utc"),
    [
        (datetime(2027, 1, 14, 18, 30), datetime(2027, 1, 14, 17, 30)),  # winter: UTC+1
        (datetime(2027, 7, 14, 18, 30), datetime(2027, 7, 14, 16, 30)),  # summer: UTC+2
        (datetime(2027, 7, 14, 16, 30, tzinfo=UTC), datetime(2027, 7, 14, 16, 30)),
    ],
)
def test_naive_times_are_paris_times(given: datetime, utc: datetime) -> None:
    """An organiser's naive time is Paris wall-clock time; aware times keep their instant."""
    assert to_utc_naive(given) == utc
    assert to_paris(given).tzinfo == PARIS


def test_cancel_links_are_signed_per_registration_and_secret() -> None:
    """A token is valid only for its registration and the secret that signed it."""
    token = cancel_token("secret", "reg-1")
    assert valid_cancel_token("secret", "reg-1", token)
    assert not valid_cancel_token("secret", "reg-2", token)
    assert not valid_cancel_token("other", "reg-1", token)
    assert not valid_cancel_token(
        "secret", "reg-1", token[:-1] + ("A" if token[-1] != "A" else "B")
    )


def test_invitations_remember_a_hash_of_the_normalised_email() -> None:
    """The same address, whatever its case or spaces, gives the same digest; no address kept."""
    assert email_digest(" Claire@Example.org ") == email_digest("claire@example.org")
    assert "claire" not in email_digest("claire@example.org")
