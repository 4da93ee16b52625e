"""The events store's port, one suite run on the fake (`fakes.FakeRepository`), SQLite and
PostgreSQL (`repository.SqlRepository`): what a use case stores is what it reads back, times
aware; counts, listing, queue order and waitlist places agree."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import IntegrityError

from rebond_contracts.payloads import ConferenceKind
from rebond_events.domain import (
    PARIS,
    Conference,
    Counts,
    Details,
    EventStatus,
    Registration,
    RegistrationStatus,
)
from rebond_events.ports import Invitation, Listing, Repository
from rebond_events.repository import SqlRepository
from rebond_events.store import migrate
from rebond_events.tables import erasures
from rebond_sql.erasure import reference_digest
from rebond_sql.migrations import sync_url

from .fakes import Duplicate, FakeRepository

NOW = datetime(2027, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
CONFIRMED, WAITLISTED, CANCELLED = (
    RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED, RegistrationStatus.CANCELLED,
)  # fmt: skip


@pytest.fixture(params=["fake", "sqlite", "postgresql"])
def repository(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Repository]:
    """The port on each store, inside one transaction (rolled back at the end)."""
    if request.param == "fake":
        yield FakeRepository()
        return
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else sqlite_url
    migrate(url)
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection, connection.begin() as transaction:
            yield SqlRepository(connection)
            transaction.rollback()
    finally:
        engine.dispose()


def conference(
    id: str, *, days: int = 10, region: str = "32", department: str = "59",
    kind: ConferenceKind = ConferenceKind.CONFERENCE,
    status: EventStatus = EventStatus.SCHEDULED, capacity: int = 2,
) -> Conference:  # fmt: skip
    starts_at = (NOW + timedelta(days=days)).astimezone(PARIS)  # any zone: the same instant
    details = Details(
        title=f"Conférence {id}", description="Témoignages", kind=kind, starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=2), venue_address="1 rue Nationale", city="Lille",
        region=region, department=department, online_url="https://visio.example.org/",
        capacity=capacity,
    )  # fmt: skip
    return Conference(id, "second-souffle", details, status, 1, NOW, NOW)


def registration(
    id: str, event_id: str = "e1", status: RegistrationStatus = CONFIRMED, minutes: int = 0
) -> Registration:
    at = NOW + timedelta(minutes=minutes)
    return Registration(
        id=id, event_id=event_id, name="Claire", email=f"{id}@example.org",
        email_digest=f"digest-{id}", consent=True, locale="fr", status=status, queued_at=at,
        created_at=at, updated_at=at, link_sent_at=None,
    )  # fmt: skip


def test_a_conference_reads_back_as_stored(repository: Repository) -> None:
    """Every field comes back, times as the same instants (aware); a change is kept."""
    stored = conference("e1")
    repository.add_conference(stored)
    assert repository.conference("e1", lock=True) == stored
    changed = replace(stored.cancel(NOW + timedelta(hours=1)), details=replace(
        stored.details, city="Roubaix", online_url=None
    ))  # fmt: skip
    repository.save_conference(changed)
    assert repository.conference("e1") == changed and repository.conference("e2") is None


def test_counts_are_per_conference_and_status(repository: Repository) -> None:
    """Confirmed and waitlisted are counted apart, cancelled not at all."""
    for event_id in ("e1", "e2", "e3"):
        repository.add_conference(conference(event_id))
    statuses = [("a", "e1", CONFIRMED), ("b", "e1", CONFIRMED), ("c", "e1", WAITLISTED),
                ("d", "e1", CANCELLED), ("e", "e2", WAITLISTED)]  # fmt: skip
    for id, event_id, status in statuses:
        repository.add_registration(registration(id, event_id, status))
    counts = repository.counts(["e1", "e2", "e3"])
    assert counts["e1"] == Counts(2, 1) and counts["e2"] == Counts(0, 1)
    assert counts.get("e3", Counts()) == Counts() and repository.counts([]) == {}


def test_the_listing_filters_orders_and_pages(repository: Repository) -> None:
    """Scheduled conferences from `since`, soonest first (ties by id), filtered, by pages."""
    for c in [
        conference("e1", days=3), conference("e2", days=1), conference("e3", days=2, region="11",
        department="75"), conference("e4", days=4, kind=ConferenceKind.PEER_EXCHANGE),
        conference("e5", days=5, status=EventStatus.CANCELLED), conference("e6", days=-1),
    ]:  # fmt: skip
        repository.add_conference(c)

    def ids(**query: object) -> tuple[int, list[str]]:
        total, found = repository.listing(Listing(since=NOW, **query))  # type: ignore[arg-type]
        return total, [c.id for c in found]

    assert ids() == (4, ["e2", "e3", "e1", "e4"])
    assert ids(region="11") == (1, ["e3"]) and ids(department="59", per_page=2) == (3, ["e2", "e1"])
    assert ids(kind=ConferenceKind.PEER_EXCHANGE) == (1, ["e4"])
    assert ids(page=2, per_page=3) == (4, ["e4"])


def test_upcoming_conferences_of_a_region(repository: Repository) -> None:
    """Scheduled ones of the region starting after the time given, soonest first, at most
    `limit`."""
    for c in [
        conference("e1", days=3), conference("e2", days=1), conference("e3", days=2, region="11",
        department="75"), conference("e4", days=4, status=EventStatus.CANCELLED),
        conference("e5", days=-1),
    ]:  # fmt: skip
        repository.add_conference(c)
    assert [c.id for c in repository.upcoming("32", NOW, 10)] == ["e2", "e1"]
    assert [c.id for c in repository.upcoming("32", NOW, 1)] == ["e2"]


def test_conferences_starting_within_a_window(repository: Repository) -> None:
    """Scheduled ones starting after the window's start and by its end, soonest first."""
    for c in [
        conference("e1", days=2), conference("e2", days=1), conference("e3", days=3),
        conference("e4", days=1, status=EventStatus.CANCELLED), conference("e5", days=0),
    ]:  # fmt: skip
        repository.add_conference(c)
    found = repository.starting_between(NOW, NOW + timedelta(days=2))
    assert [c.id for c in found] == ["e2", "e1"]


def test_a_reminder_is_kept(repository: Repository) -> None:
    """`reminded_at` reads back as stored (the reminder goes once)."""
    repository.add_conference(conference("e1"))
    stored = repository.add_registration(registration("a"))
    assert stored.reminded_at is None
    repository.save_registration(stored.reminded(NOW + timedelta(days=8)))
    found = repository.registration("a")
    assert found is not None and found.reminded_at == NOW + timedelta(days=8)


def test_registrations_keep_their_queue_order(repository: Repository) -> None:
    """The queue is by `queued_at`, ties by arrival; each waitlisted one knows its place; a
    registration is found by id or by person and conference, and its changes are kept."""
    repository.add_conference(conference("e1"))
    first = repository.add_registration(registration("a", status=WAITLISTED, minutes=5))
    second = repository.add_registration(registration("b", status=WAITLISTED, minutes=5))
    early = repository.add_registration(registration("c", status=WAITLISTED, minutes=1))
    repository.add_registration(registration("d", status=CONFIRMED, minutes=0))
    assert first.seq is not None and second.seq is not None and first.seq < second.seq
    assert [r.id for r in repository.queue("e1")] == ["d", "c", "a", "b"]
    assert [r.id for r in repository.queue("e1", [WAITLISTED])] == ["c", "a", "b"]
    places = [repository.waitlist_position(r) for r in (early, first, second)]
    assert places == [1, 2, 3]
    assert repository.registration("a") == first
    assert repository.registration_of("e1", "digest-b") == second
    assert repository.registration_of("e2", "digest-b") is None
    mailed = first.with_status(CONFIRMED, NOW + timedelta(hours=1)).mailed(NOW)
    repository.save_registration(mailed)
    assert repository.registration("a") == mailed
    assert [repository.waitlist_position(r) for r in (early, second)] == [1, 2]


def test_one_registration_per_person_and_conference(repository: Repository) -> None:
    """A second registration of the same person to the same conference is refused."""
    repository.add_conference(conference("e1"))
    repository.add_registration(registration("a"))
    with pytest.raises((IntegrityError, Duplicate)):
        repository.add_registration(replace(registration("b"), email_digest="digest-a"))


def test_invitations_and_erasures(repository: Repository) -> None:
    """A person is known to a conference once invited or registered; a tombstone says a
    reference was erased."""
    repository.add_conference(conference("e1"))
    repository.add_invitation(Invitation("i1", "e1", "digest-x", "RB-A", NOW))
    repository.add_registration(registration("a"))
    assert repository.known("e1", "digest-x") and repository.known("e1", "digest-a")
    assert not repository.known("e1", "digest-y")
    assert not repository.erased("RB-A")
    if isinstance(repository, SqlRepository):  # an erasure writes the tombstone (privacy.erase)
        repository.connection.execute(
            erasures.insert().values(reference_sha256=reference_digest("RB-A"), erased_at=NOW)
        )
    else:
        repository.erasures.add("RB-A")
    assert repository.erased("RB-A") and not repository.erased("RB-B")
