"""Pure rules: seats, waitlist promotion and places, what a registration form means, a
conference's life, invitation choice, Paris time, signed links."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from rebond_contracts.payloads import ConferenceKind, RegistrationChange
from rebond_events.domain import (
    PARIS,
    RESEND_AFTER,
    Arrival,
    CancelLinks,
    Candidate,
    Conference,
    Details,
    EventStatus,
    InvalidLink,
    Refusal,
    Registration,
    RegistrationStatus,
    arrival,
    choose_invitation,
    email_digest,
    link_generation,
    may_resend,
    name_problem,
    normalise_email,
    one_line_problem,
    seats_left,
    status_for_newcomer,
    tidy_name,
    to_paris,
    to_promote,
    told,
    waitlist_positions,
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
    assert to_paris(given).astimezone(UTC) == utc.replace(tzinfo=UTC)
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


def registration(
    status: RegistrationStatus = RegistrationStatus.CONFIRMED,
    link_sent_at: datetime | None = None,
    queued_at: datetime = NOW,
    id: str = "r1",
) -> Registration:
    return Registration(
        id=id, event_id="e1", name="Claire", email="claire@example.org", email_digest="d",
        consent=True, locale="fr", status=status, queued_at=queued_at, created_at=queued_at,
        updated_at=queued_at, link_sent_at=link_sent_at,
    )  # fmt: skip


CANCELLED = RegistrationStatus.CANCELLED


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (None, Arrival.NEW),
        (registration(CANCELLED, link_sent_at=NOW), Arrival.BACK),
        (registration(CONFIRMED, link_sent_at=None), Arrival.REMIND),
        (registration(WAITLISTED, link_sent_at=NOW - RESEND_AFTER), Arrival.REMIND),
        (registration(CONFIRMED, link_sent_at=NOW - timedelta(minutes=9)), Arrival.QUIET),
        (registration(WAITLISTED, link_sent_at=NOW), Arrival.QUIET),
    ],
)
def test_what_a_registration_form_means(existing: Registration | None, expected: Arrival) -> None:
    """A new person registers; one who cancelled comes back; one registered is e-mailed again,
    at most every ten minutes, and nothing else changes."""
    assert arrival(existing, NOW) == expected


@pytest.mark.parametrize(
    ("status", "change"),
    [(CONFIRMED, RegistrationChange.CONFIRMED), (WAITLISTED, RegistrationChange.WAITLISTED)],
)
def test_a_person_registering_is_told_a_seat_or_the_waitlist(
    status: RegistrationStatus, change: RegistrationChange
) -> None:
    """The e-mail of a registration says which of the two it got."""
    assert told(status) == change


@pytest.mark.parametrize(
    ("statuses", "places"),
    [
        ([], {}),
        ([CONFIRMED, CONFIRMED], {}),
        ([CONFIRMED, WAITLISTED, CANCELLED, WAITLISTED], {"r1": 1, "r3": 2}),
        ([WAITLISTED, WAITLISTED, WAITLISTED], {"r0": 1, "r1": 2, "r2": 3}),
    ],
)
def test_waitlist_places_follow_the_queue(
    statuses: list[RegistrationStatus], places: dict[str, int]
) -> None:
    """Each waitlisted registration's place counts only the waitlisted ahead of it."""
    queue = [registration(status, id=f"r{n}") for n, status in enumerate(statuses)]
    assert waitlist_positions(queue) == places


@pytest.mark.parametrize(
    ("queued_at", "generation"),
    [
        (datetime(2027, 1, 14, 17, 30, tzinfo=UTC), "2027-01-14T17:30:00"),
        (datetime(2027, 1, 14, 18, 30, 0, 5, tzinfo=PARIS), "2027-01-14T17:30:00.000005"),
    ],
)
def test_a_links_generation_is_its_naive_utc_text(queued_at: datetime, generation: str) -> None:
    """The generation is the text links were signed with when the store kept naive UTC times,
    so that a link already in a mailbox still matches its registration."""
    assert link_generation(queued_at) == generation
    assert registration(queued_at=queued_at).generation == generation


def conference(starts_in: timedelta, status: EventStatus = EventStatus.SCHEDULED) -> Conference:
    details = Details(
        title="Rebondir", description="", kind=ConferenceKind.CONFERENCE,
        starts_at=NOW + starts_in, ends_at=NOW + starts_in + timedelta(hours=2),
        venue_address="1 rue", city="Lille", region="32", department="59", online_url=None,
        capacity=10,
    )  # fmt: skip
    return Conference("e1", "o", details, status, 1, NOW, NOW)


@pytest.mark.parametrize(
    ("starts_in", "status", "refusal", "ended"),
    [
        (timedelta(days=1), EventStatus.SCHEDULED, None, False),
        (timedelta(days=1), EventStatus.CANCELLED, Refusal.CANCELLED, False),
        (timedelta(0), EventStatus.SCHEDULED, Refusal.STARTED, False),
        (-timedelta(hours=1), EventStatus.SCHEDULED, Refusal.STARTED, False),
        (-timedelta(hours=2), EventStatus.SCHEDULED, Refusal.STARTED, True),
        (-timedelta(days=1), EventStatus.CANCELLED, Refusal.CANCELLED, True),
    ],
)
def test_registrations_until_the_start_links_until_the_end(
    starts_in: timedelta, status: EventStatus, refusal: Refusal | None, ended: bool
) -> None:
    """A conference takes registrations until it starts (never once cancelled); cancellation
    links work until it ends."""
    assert conference(starts_in, status).refuses_registration(NOW) == refusal
    assert conference(starts_in, status).ended(NOW) == ended


def test_each_change_of_a_conference_is_a_new_version() -> None:
    """Changing or cancelling bumps the version and the time of the last change."""
    later = NOW + timedelta(hours=1)
    scheduled = conference(timedelta(days=3))
    changed = scheduled.changed(replace(scheduled.details, city="Roubaix"), later)
    cancelled = changed.cancel(later)
    assert (changed.version, changed.details.city, changed.updated_at) == (2, "Roubaix", later)
    assert (cancelled.version, cancelled.cancelled, scheduled.cancelled) == (3, True, False)


def test_registering_again_after_cancelling_goes_to_the_end_of_the_queue() -> None:
    """A person back after cancelling takes what they typed this time and a new generation."""
    later = NOW + timedelta(days=1)
    back = registration(CANCELLED).requeued("Zoé", "zoe@example.org", True, "en", WAITLISTED, later)
    assert (back.name, back.email, back.locale, back.status) == (
        "Zoé", "zoe@example.org", "en", WAITLISTED,
    )  # fmt: skip
    assert back.queued_at == later and back.generation != registration().generation
