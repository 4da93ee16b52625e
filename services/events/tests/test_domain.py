"""Pure rules: seats, waitlist promotion, invitation choice, Paris time, signed links."""

from datetime import UTC, datetime, timedelta

import pytest

from rebond_events.domain import (
    PARIS,
    RESEND_AFTER,
    CancelLinks,
    Candidate,
    InvalidLink,
    RegistrationStatus,
    choose_invitation,
    email_digest,
    may_resend,
    name_problem,
    normalise_email,
    one_line_problem,
    seats_left,
    status_for_newcomer,
    tidy_name,
    to_paris,
    to_promote,
    to_utc_naive,
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


def test_cancel_links_are_signed_per_registration_generation_and_secret() -> None:
    """A token is valid only for its registration, says which generation it was signed for,
    and no other secret (nor a changed character) makes one."""
    links = CancelLinks("secret")
    token = links.token("reg-1", "2027-01-14T17:30:00")
    assert links.generation("reg-1", token) == "2027-01-14T17:30:00"
    for registration, bad in [
        ("reg-2", token),
        ("reg-1", CancelLinks("other").token("reg-1", "2027-01-14T17:30:00")),
        ("reg-1", token[:2] + ("A" if token[2] != "A" else "B") + token[3:]),  # the payload
        ("reg-1", "été"),
        ("reg-1", ""),
    ]:
        with pytest.raises(InvalidLink):
            links.generation(registration, bad)


@pytest.mark.parametrize(
    ("address", "person"),
    [
        (" Claire@Example.org ", "claire@example.org"),
        ("claire+conferences@example.org", "claire@example.org"),
        ("claire+a+b@example.org", "claire@example.org"),
        ("c.laire@gmail.com", "claire@gmail.com"),
        ("C.Laire+x@GoogleMail.com", "claire@gmail.com"),
        ("c.laire@example.org", "c.laire@example.org"),  # dots count elsewhere
        ("+tag@example.org", "+tag@example.org"),  # nothing before the tag: left alone
    ],
)
def test_variants_of_one_mailbox_are_one_person(address: str, person: str) -> None:
    """Case, a `+tag`, and Gmail's dots and second domain do not make another person."""
    assert normalise_email(address) == person
    assert email_digest(address) == email_digest(person)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Claire", None),
        ("Jean-Pierre O'Neill", None),
        ("J.-P. Martin", None),
        ("Zoé L’Hôte", None),
        ("Алёна", None),
        ("", "name_length"),
        ("C" * 81, "name_length"),
        ("Claire 2", "name_characters"),
        ("claire@example.org", "name_characters"),
        ("Voir exemple.fr", "name_characters"),
        ("https://x.example", "name_characters"),
        ("...", "name_characters"),
        ("Claire\nBcc", "control_characters"),
        ("Claire\u202e", "control_characters"),
    ],
)
def test_names_are_letters_and_what_joins_them(name: str, problem: str | None) -> None:
    """A name holds letters of any script, spaces, apostrophes, hyphens and initials' dots."""
    assert name_problem(name) == problem


def test_names_are_kept_tidy() -> None:
    """A combining accent becomes one letter; runs of spaces one space."""
    assert tidy_name("  Zoe\u0301   Martin ") == "Zoé Martin"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Rebondir après une liquidation", None),
        ("Soirée\tdébat", "control_characters"),
        ("Soirée\r\nBcc: x", "control_characters"),
        ("A\u2029B", "control_characters"),
        ("\u2067abc", "control_characters"),
    ],
)
def test_one_line_fields_refuse_what_breaks_a_header(text: str, problem: str | None) -> None:
    """Control characters, line and paragraph separators and direction overrides are refused."""
    assert one_line_problem(text) == problem


def test_a_link_is_mailed_again_at_most_every_ten_minutes() -> None:
    """A repeat registration re-sends the link only when the last one is old enough."""
    now = datetime(2027, 1, 1, 12, tzinfo=UTC)
    assert may_resend(None, now)
    assert not may_resend(now - RESEND_AFTER + timedelta(seconds=1), now)
    assert may_resend(now - RESEND_AFTER, now)


def test_invitations_remember_a_hash_of_the_normalised_email() -> None:
    """The same address, whatever its case or spaces, gives the same digest; no address kept."""
    assert email_digest(" Claire@Example.org ") == email_digest("claire@example.org")
    assert "claire" not in email_digest("claire@example.org")
