"""The use cases on the fake store (`fakes.FakeRepository`), table by table: what each decides,
what it keeps and what it announces, without Kafka or a database."""

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from rebond_contracts.payloads import InvitationContactV1
from rebond_contracts.topics import CONFERENCES, INVITATIONS, REGISTRATIONS
from rebond_events import inviting, registering, scheduling
from rebond_events.announcements import Announcer, Links
from rebond_events.domain import RESEND_AFTER, RegistrationStatus
from rebond_events.errors import Conflict, Expired, Forbidden, InvalidChange, NotFound
from rebond_events.models import EventIn, EventPatch, RegistrationIn
from rebond_events.ports import Outcome
from rebond_sql.outbox import Message
from rebond_testing.tokens import forged

from .fakes import FakeRepository, FrozenClock

NOW = datetime(2027, 1, 1, 12, tzinfo=UTC)
#: The reference of the person invited, and of an earlier questionnaire of theirs.
PERSON, EARLIER = "RB-7K3M-Q9XA-2DFE-W8NB", "RB-0HCK-9645-C57J-B5Q9"
ANNOUNCE = Announcer(Links("https://conferences.example", "s" * 40))
CONFIRMED, WAITLISTED, CANCELLED = (
    RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED, RegistrationStatus.CANCELLED,
)  # fmt: skip


class World:
    """A fake store with one conference of `second-souffle`, and the clock the use cases read."""

    def __init__(self, capacity: int = 2) -> None:
        self.repository = FakeRepository()
        self.clock = FrozenClock(NOW)
        data = EventIn(
            title="Rebondir", kind="conference", starts_at=NOW + timedelta(days=10),
            ends_at=NOW + timedelta(days=10, hours=2), venue_address="1 rue Nationale",
            city="Lille", region="32", department="59", capacity=capacity,
        )  # fmt: skip
        self.event_id = self.run(
            scheduling.schedule, organiser="second-souffle", data=data
        ).value.id

    def run(self, use_case: Any, **arguments: Any) -> Outcome[Any]:
        return use_case(self.repository, announce=ANNOUNCE, clock=self.clock, **arguments)  # type: ignore[no-any-return]

    def register(self, email: str, name: str = "Claire") -> Outcome[registering.Registered]:
        self.clock.now += timedelta(seconds=1)
        data = RegistrationIn(name=name, email=email, consent=True)
        return self.run(registering.register, event_id=self.event_id, data=data)

    def statuses(self) -> list[tuple[str, RegistrationStatus]]:
        return [(r.email, r.status) for r in self.repository.queue(self.event_id)]


def said(messages: Sequence[Message]) -> list[tuple[str, str, Any]]:
    """Each message as (topic, change, e-mail or None), and the waitlist place if any."""
    out = []
    for message in messages:
        payload = json.loads(message.value)
        person = payload.get("email")
        place = payload.get("waitlist_position")
        out.append((message.topic, payload.get("change", "invited"), (person, place)))
    return out


def token(message: Message) -> str:
    return parse_qs(urlparse(json.loads(message.value)["cancel_url"]).query)["token"][0]


# --- registering -------------------------------------------------------------------------------


A, B, C, D = (f"{person}@example.org" for person in "abcd")


@pytest.mark.parametrize(
    ("before", "email", "later", "registered", "announced", "queue"),
    [
        ([], A, 0, (CONFIRMED, True, True), [(A, "confirmed", None)], [(A, CONFIRMED)]),
        ([A, B], C, 0, (WAITLISTED, True, True), [(C, "waitlisted", 1)],
         [(A, CONFIRMED), (B, CONFIRMED), (C, WAITLISTED)]),
        # Already registered: e-mailed again to the address registered, after ten minutes only.
        ([A], "A+x@example.org", 0, (CONFIRMED, False, False), [], [(A, CONFIRMED)]),
        ([A], "a+x@example.org", 11, (CONFIRMED, False, True), [(A, "confirmed", None)],
         [(A, CONFIRMED)]),
        ([A, B, C, D], D, 11, (WAITLISTED, False, True), [(D, "waitlisted", 2)],
         [(A, CONFIRMED), (B, CONFIRMED), (C, WAITLISTED), (D, WAITLISTED)]),
    ],
)  # fmt: skip
def test_registering(
    before: list[str],
    email: str,
    later: int,
    registered: tuple[RegistrationStatus, bool, bool],
    announced: list[tuple[str, str, int | None]],
    queue: list[tuple[str, RegistrationStatus]],
) -> None:
    """A seat while one is free, else the waitlist (with its place); a person already there is
    e-mailed again at the address they registered, at most every ten minutes, and keeps their
    place and name."""
    world = World(capacity=2)
    for person in before:
        world.register(person)
    world.clock.now += timedelta(minutes=later)
    outcome = world.register(email, name="Mallory")
    value = outcome.value
    assert (value.status, value.created, value.mailed) == registered
    assert said(outcome.messages) == [
        (REGISTRATIONS.name, change, (to, place)) for to, change, place in announced
    ]
    names = {json.loads(m.value)["name"] for m in outcome.messages}
    assert names <= ({"Mallory"} if value.created else {"Claire"})  # a repeat keeps the name
    assert world.statuses() == queue


@pytest.mark.parametrize(
    ("change", "error"),
    [({"status": "cancelled"}, Conflict), ({"starts_in": timedelta(0)}, Conflict)],
)
def test_a_cancelled_or_started_conference_takes_no_registration(
    change: dict[str, Any], error: type[Exception]
) -> None:
    """Registering for a conference that is cancelled, or has started, is refused."""
    world = World()
    if change.get("status"):
        world.run(scheduling.cancel, organiser="second-souffle", event_id=world.event_id)
    else:
        world.clock.now = NOW + timedelta(days=10)
    with pytest.raises(error):
        world.register("a@example.org")
    with pytest.raises(NotFound):
        world.run(registering.register, event_id="nowhere",
                  data=RegistrationIn(name="A", email="a@example.org", consent=True))  # fmt: skip


def test_registering_again_after_cancelling_queues_at_the_end_with_a_new_link() -> None:
    """Back after cancelling: the end of the queue, what was typed this time; the old link
    no longer cancels, the new one does."""
    world = World(capacity=1)
    [first] = world.register("a@example.org").messages
    world.register("b@example.org")
    registration_id = json.loads(first.value)["registration_id"]
    world.run(registering.cancel, registration_id=registration_id, token=token(first))
    back = world.register("a+x@example.org", name="Alice")
    assert said(back.messages) == [(REGISTRATIONS.name, "waitlisted", ("a+x@example.org", 1))]
    assert back.value.created and back.value.registration_id == registration_id
    assert world.statuses() == [("b@example.org", CONFIRMED), ("a+x@example.org", WAITLISTED)]
    with pytest.raises(Expired):
        world.run(registering.cancel, registration_id=registration_id, token=token(first))
    world.run(registering.cancel, registration_id=registration_id, token=token(back.messages[0]))


# --- cancelling through the link ---------------------------------------------------------------


def test_cancelling_frees_the_seat_for_the_first_waitlisted() -> None:
    """The person cancelled is told; the first waitlisted gets the seat; again, nothing."""
    world = World(capacity=1)
    [mail] = world.register("a@example.org").messages
    world.register("b@example.org")
    world.register("c@example.org")
    registration_id = json.loads(mail.value)["registration_id"]
    outcome = world.run(registering.cancel, registration_id=registration_id, token=token(mail))
    assert outcome.value.promoted == 1
    assert said(outcome.messages) == [
        (REGISTRATIONS.name, "cancelled", ("a@example.org", None)),
        (REGISTRATIONS.name, "promoted", ("b@example.org", None)),
    ]
    assert json.loads(outcome.messages[0].value)["cancelled_by"] == "person"
    again = world.run(registering.cancel, registration_id=registration_id, token=token(mail))
    assert (again.value.promoted, list(again.messages)) == (0, [])
    assert world.statuses() == [
        ("a@example.org", CANCELLED), ("b@example.org", CONFIRMED), ("c@example.org", WAITLISTED),
    ]  # fmt: skip


def test_who_registers_within_the_two_days_gets_the_confirmation_and_no_reminder() -> None:
    """A person registering the day before has just been sent the conference and its
    cancellation link: no reminder follows; someone registered earlier still gets theirs."""
    world = World(capacity=5)
    world.register(A)
    world.clock.now = NOW + timedelta(days=9)  # the day before
    world.register(B)
    assert said(world.run(registering.remind).messages) == [
        (REGISTRATIONS.name, "reminder", (A, None))
    ]
    assert world.run(registering.remind).messages == []


def test_confirmed_registrants_are_reminded_once_two_days_before() -> None:
    """Nothing before the two days; then each confirmed registrant once, with a cancellation
    link that works; never the waitlisted or the cancelled; a person promoted within the two
    days, whose promotion e-mail just gave the conference and its link, is not reminded on
    top of it; a cancelled conference reminds nobody."""
    world = World(capacity=2)
    [mail_a] = world.register(A).messages
    world.register(B)
    world.register(C)  # waitlisted
    assert world.run(registering.remind).messages == []  # ten days before
    world.clock.now = NOW + timedelta(days=8, minutes=1)
    reminded = world.run(registering.remind)
    assert said(reminded.messages) == [
        (REGISTRATIONS.name, "reminder", (A, None)), (REGISTRATIONS.name, "reminder", (B, None)),
    ]  # fmt: skip
    assert world.run(registering.remind).messages == []  # once
    registration_id = json.loads(mail_a.value)["registration_id"]
    cancel = world.run(
        registering.cancel, registration_id=registration_id, token=token(reminded.messages[0])
    )
    assert said(cancel.messages)[1] == (REGISTRATIONS.name, "promoted", (C, None))
    assert world.run(registering.remind).messages == []
    other = World(capacity=2)
    other.register(D)
    other.clock.now = NOW + timedelta(days=8, minutes=1)
    other.run(scheduling.cancel, organiser="second-souffle", event_id=other.event_id)
    assert other.run(registering.remind).messages == []


@pytest.mark.parametrize(
    ("how", "error"),
    [("tampered", Forbidden), ("other", Forbidden), ("ended", Expired), ("unknown", NotFound)],
)
def test_a_link_that_cannot_cancel(how: str, error: type[Exception]) -> None:
    """A token not signed for the registration is refused; so is any link once its conference
    ended; an unknown registration is not found."""
    world = World()
    [mail] = world.register("a@example.org").messages
    [other] = world.register("b@example.org").messages
    registration_id = json.loads(mail.value)["registration_id"]
    used = {"tampered": forged(token(mail)), "other": token(other)}.get(how, token(mail))
    if how == "ended":
        world.clock.now = NOW + timedelta(days=10, hours=2)
    if how == "unknown":  # a token rightly signed, for a registration that does not exist
        registration_id = "0b7b2c52-1d55-4a0c-9f0d-6b0d0c7d4b11"
        used = ANNOUNCE.links.cancel_links.token(registration_id, "2027-01-01T12:00:00")
    with pytest.raises(error):
        world.run(registering.cancel, registration_id=registration_id, token=used)
    assert ("a@example.org", CONFIRMED) in world.statuses()


# --- organisers --------------------------------------------------------------------------------


def test_changing_tells_each_active_registrant_and_promotes_into_a_larger_room() -> None:
    """The change is announced, each active registrant told (the waitlisted with their place),
    then the new seats go to the waitlist in order; the cancelled hear nothing."""
    world = World(capacity=1)
    for person in ("a", "b", "c", "d"):
        world.register(f"{person}@example.org")
    [mail] = world.register("e@example.org").messages
    world.run(registering.cancel, registration_id=json.loads(mail.value)["registration_id"],
              token=token(mail))  # fmt: skip
    outcome = world.run(
        scheduling.change, organiser="second-souffle", event_id=world.event_id,
        patch=EventPatch(capacity=3, city="Roubaix"),
    )  # fmt: skip
    assert said(outcome.messages) == [
        (CONFERENCES.name, "updated", (None, None)),
        (REGISTRATIONS.name, "event_updated", ("a@example.org", None)),
        (REGISTRATIONS.name, "event_updated", ("b@example.org", 1)),
        (REGISTRATIONS.name, "event_updated", ("c@example.org", 2)),
        (REGISTRATIONS.name, "event_updated", ("d@example.org", 3)),
        (REGISTRATIONS.name, "promoted", ("b@example.org", None)),
        (REGISTRATIONS.name, "promoted", ("c@example.org", None)),
    ]
    public = outcome.value
    assert (public.version, public.city, public.confirmed, public.waitlisted) == (
        2,
        "Roubaix",
        3,
        1,
    )


@pytest.mark.parametrize(
    ("organiser", "event", "patch", "error"),
    [
        ("60000-rebonds", "ours", EventPatch(city="Pau"), Forbidden),
        ("second-souffle", "nowhere", EventPatch(city="Pau"), NotFound),
        ("second-souffle", "ours", EventPatch(region="11"), InvalidChange),
        ("second-souffle", "ours", EventPatch(ends_at=NOW), InvalidChange),
        ("second-souffle", "cancelled", EventPatch(city="Pau"), Conflict),
    ],
)
def test_a_change_that_is_refused(
    organiser: str, event: str, patch: EventPatch, error: type[Exception]
) -> None:
    """Another organiser's conference, an unknown one, a change that breaks a rule (checked
    against the whole conference) or a cancelled conference: nothing changes."""
    world = World()
    if event == "cancelled":
        world.run(scheduling.cancel, organiser="second-souffle", event_id=world.event_id)
    before = world.repository.conference(world.event_id)
    event_id = "nowhere" if event == "nowhere" else world.event_id
    with pytest.raises(error):
        world.run(scheduling.change, organiser=organiser, event_id=event_id, patch=patch)
    assert world.repository.conference(world.event_id) == before


def test_cancelling_a_conference_cancels_and_tells_each_registrant_once() -> None:
    """Every active registration is cancelled by the organiser and told; cancelling again
    announces nothing."""
    world = World(capacity=1)
    world.register("a@example.org")
    world.register("b@example.org")
    outcome = world.run(scheduling.cancel, organiser="second-souffle", event_id=world.event_id)
    assert said(outcome.messages) == [
        (CONFERENCES.name, "cancelled", (None, None)),
        (REGISTRATIONS.name, "cancelled", ("a@example.org", None)),
        (REGISTRATIONS.name, "cancelled", ("b@example.org", None)),
    ]
    assert {json.loads(m.value).get("cancelled_by") for m in outcome.messages[1:]} == {"organiser"}
    assert (outcome.value.status, outcome.value.confirmed) == ("cancelled", 0)
    again = world.run(scheduling.cancel, organiser="second-souffle", event_id=world.event_id)
    assert not again.messages and again.value.version == outcome.value.version


# --- invitations -------------------------------------------------------------------------------


def contact(department: str | None = "59", email: str = "zoe@example.org") -> InvitationContactV1:
    return InvitationContactV1(first_name="Zoé", email=email, region="32", department=department)


@pytest.mark.parametrize(
    ("situation", "invited", "match"),
    [
        ("department", True, "department"),
        ("region", True, "region"),
        ("no department", True, "region"),
        ("erased", False, None),
        ("registered", False, None),
        ("invited", False, None),
        ("past", False, None),
    ],
)
def test_inviting(situation: str, invited: bool, match: str | None) -> None:
    """The next conference of the department, else of the region; never an erased person, nor
    one already invited or registered; never a conference already started."""
    world = World()
    person = contact(department={"region": "62", "no department": None}.get(situation, "59"))
    if situation == "erased":
        world.repository.erasures.add(PERSON)
    if situation == "registered":
        world.register("Zoe+events@example.org")
    if situation == "invited":
        world.run(inviting.invite, reference=EARLIER, correlation_id=EARLIER, contact=person)
    if situation == "past":
        world.clock.now = NOW + timedelta(days=11)
    outcome = world.run(inviting.invite, reference=PERSON, correlation_id="c-1", contact=person)
    assert outcome.value is invited
    if not invited:
        assert not outcome.messages
        return
    [message] = outcome.messages
    payload = json.loads(message.value)
    assert (message.topic, message.subject, message.key) == (INVITATIONS.name, PERSON, PERSON)
    assert (payload["match"], payload["email"], payload["conference"]["event_id"]) == (
        match, "zoe@example.org", world.event_id,
    )  # fmt: skip
    assert message.headers["ce_id"] == payload["invitation_id"]
    assert message.headers["ce_correlationid"] == "c-1"


def test_a_repeat_within_ten_minutes_is_quiet_and_changes_nothing() -> None:
    """A repeat registration just after the first writes nothing (the reply hides it)."""
    world = World()
    world.register("a@example.org")
    before = dict(world.repository.registrations)
    world.clock.now += RESEND_AFTER - timedelta(seconds=2)
    outcome = world.register("a@example.org", name="Mallory")
    assert not outcome.messages and world.repository.registrations == before
    assert replace(outcome.value, registration_id="") == registering.Registered(
        "", CONFIRMED, created=False, mailed=False
    )
