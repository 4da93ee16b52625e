"""In-memory fakes of the ports, for tests (here and in the services that will talk to this one).

They behave as the real adapters are specified to: the outbound fake keeps what it was given
and refuses while `down`; the events fake checks a conference as the events API does and
answers its 422 shape (`FieldError`s naming each field).
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rebond_contracts.geography import REGION_OF_DEPARTMENT, REGIONS
from rebond_coordination.ports import (
    Conference,
    EventsInvalid,
    EventsNotFound,
    EventsUnavailable,
    FieldError,
    MailUnavailable,
    Move,
    OutboundMessage,
    OutboundUnavailable,
    PreviewRejected,
    PreviewResult,
    Registration,
    StoryToModerate,
    VolunteerToModerate,
)

PARIS = ZoneInfo("Europe/Paris")


class FakeOutbound:
    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []
        self.down = False

    async def publish(self, message: OutboundMessage) -> None:
        if self.down:
            raise OutboundUnavailable("broker down (fake)")
        self.sent.append(message)

    def of_kind(self, kind: str) -> list[OutboundMessage]:
        return [message for message in self.sent if message.kind == kind]


@dataclass
class SentInvitation:
    to: str
    name: str
    link: str
    invited_by: str
    expires_at: datetime


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[SentInvitation] = []
        self.down = False

    async def send_invitation(
        self, *, to: str, name: str, link: str, invited_by: str, expires_at: datetime
    ) -> None:
        if self.down:
            raise MailUnavailable("SMTP down (fake)")
        self.sent.append(SentInvitation(to, name, link, invited_by, expires_at))


class FakePreview:
    """Answers `result`, or raises `rejection` when the text contains `rejected_when`."""

    def __init__(self, result: PreviewResult | None = None) -> None:
        self.result = result or PreviewResult(
            before_version="2026.11-1", after_version="candidate", weeks=4,
            moves=[
                Move(before="60000-rebonds", after="60000-rebonds", count=30),
                Move(before="60000-rebonds", after="second-souffle", count=12),
                Move(before="sos-entrepreneur", after="sos-entrepreneur", count=8),
                Move(before="sos-entrepreneur", after=None, count=1),
            ],
        )  # fmt: skip
        self.rejected_when = "weekly_capacity: -"
        self.asked: list[str] = []

    async def preview(self, directory_yaml: str) -> PreviewResult:
        self.asked.append(directory_yaml)
        if self.rejected_when in directory_yaml:
            raise PreviewRejected(
                "Input should be greater than or equal to 0", "60000-rebonds", "weekly_capacity"
            )
        return self.result


@dataclass
class _Stored:
    event: Conference
    registrations: list[Registration] = field(default_factory=list)


class FakeEvents:
    """The events service's organiser API in memory, with its field checks."""

    def __init__(self) -> None:
        self.events: dict[str, _Stored] = {}
        self.down = False
        self.stories: dict[str, StoryToModerate] = {}
        self.volunteers: dict[str, VolunteerToModerate] = {}
        #: (kind, id, approved, by association) of each moderation decision.
        self.decisions: list[tuple[str, str, bool, str]] = []

    def _check(self) -> None:
        if self.down:
            raise EventsUnavailable("events service down (fake)")

    def _stored(self, association: str, event_id: str) -> _Stored:
        stored = self.events.get(event_id)
        if stored is None or stored.event.organiser != association:
            raise EventsNotFound(event_id)
        return stored

    async def list_events(self, association: str) -> list[Conference]:
        self._check()
        return [s.event for s in self.events.values() if s.event.organiser == association]

    async def get_event(self, association: str, event_id: str) -> Conference:
        self._check()
        return self._stored(association, event_id).event

    async def create_event(self, association: str, data: dict[str, object]) -> Conference:
        self._check()
        event = _validated(
            {"id": str(uuid.uuid4()), "organiser": association, "status": "scheduled", **data}
        )
        event = event.model_copy(update={"seats_left": event.capacity})
        self.events[event.id] = _Stored(event)
        return event

    async def update_event(
        self, association: str, event_id: str, changes: dict[str, object]
    ) -> Conference:
        self._check()
        stored = self._stored(association, event_id)
        stored.event = _validated({**stored.event.model_dump(), **changes})
        return stored.event

    async def cancel_event(self, association: str, event_id: str) -> Conference:
        self._check()
        stored = self._stored(association, event_id)
        stored.event = stored.event.model_copy(update={"status": "cancelled"})
        return stored.event

    async def registrations(self, association: str, event_id: str) -> list[Registration]:
        self._check()
        return list(self._stored(association, event_id).registrations)

    async def stories_to_moderate(self, association: str) -> list[StoryToModerate]:
        self._check()
        return list(self.stories.values())

    async def moderate_story(self, association: str, story_id: str, approve: bool) -> None:
        self._decide("story", self.stories, story_id, approve, association)

    async def volunteers_to_moderate(self, association: str) -> list[VolunteerToModerate]:
        self._check()
        return list(self.volunteers.values())

    async def moderate_volunteer(self, association: str, volunteer_id: str, approve: bool) -> None:
        self._decide("volunteer", self.volunteers, volunteer_id, approve, association)

    def _decide(
        self, kind: str, pending: dict[str, Any], item_id: str, approve: bool, association: str
    ) -> None:
        """A moderation decision on one of `pending` (a story or a volunteer): it leaves the
        list and is kept in `decisions`; an unknown id is the API's 404."""
        self._check()
        if pending.pop(item_id, None) is None:
            raise EventsNotFound(item_id)
        self.decisions.append((kind, item_id, approve, association))


def _validated(values: dict[str, object]) -> Conference:
    """The events API's checks (`rebond_events.models.EventIn`), with its error shape."""
    errors = []
    for name in ("title", "venue_address", "city"):
        if not str(values.get(name) or "").strip():
            errors.append(FieldError(field=name, msg="String should have at least 1 character"))
    if values.get("kind") not in ("conference", "peer_exchange", "success_stories"):
        errors.append(
            FieldError(
                field="kind",
                msg="Input should be 'conference', 'peer_exchange' or 'success_stories'",
            )
        )
    starts, ends = _when(values.get("starts_at")), _when(values.get("ends_at"))
    if starts is None:
        errors.append(FieldError(field="starts_at", msg="Input should be a valid datetime"))
    if ends is None:
        errors.append(FieldError(field="ends_at", msg="Input should be a valid datetime"))
    elif starts is not None and ends <= starts:
        errors.append(FieldError(field="ends_at", msg="ends_at must be after starts_at"))
    region, department = values.get("region"), values.get("department")
    if region not in REGIONS:
        errors.append(FieldError(field="region", msg="Input should be a region code"))
    if department not in REGION_OF_DEPARTMENT:
        errors.append(FieldError(field="department", msg=f"Unknown department code {department}"))
    elif region in REGIONS and REGION_OF_DEPARTMENT[str(department)] != region:
        errors.append(
            FieldError(field="department", msg=f"Department {department} is not in region {region}")
        )
    capacity = values.get("capacity")
    if not isinstance(capacity, int) or not 1 <= capacity <= 100_000:
        errors.append(FieldError(field="capacity", msg="Input should be between 1 and 100000"))
    if errors:
        raise EventsInvalid(errors)
    return Conference.model_validate(
        {**values, "starts_at": starts.replace(tzinfo=starts.tzinfo or PARIS),  # type: ignore[union-attr]
         "ends_at": ends.replace(tzinfo=ends.tzinfo or PARIS)}  # type: ignore[union-attr]
    )  # fmt: skip


def _when(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
