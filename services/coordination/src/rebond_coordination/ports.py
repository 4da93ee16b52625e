"""The console's ports: what it sends out and whom it asks, as small interfaces.

Kafka, the notifier and the other services' HTTP APIs are plugged in behind these (the lead's
next step); tests and development use the fakes of `rebond_coordination.fakes`. Each adapter is
thin by design: a message here is already what goes on the wire, and every failure is one of
the `…Unavailable` errors, which the pages turn into a clear message and a retry path.

Outbound messages are never sent from a page directly: the action, its audit entry and the
message are written in one transaction (the outbox), then `Relay` hands the message to the
`Outbound` port, and retries it until the port takes it. So an assignment is never published
without being recorded, nor recorded and lost.
"""

from datetime import date, datetime
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from rebond_contracts.moderation import VolunteerForModerator as VolunteerToModerate
from rebond_contracts.payloads import Answer, DeclineReason
from rebond_contracts.preview import Move, PreviewResult

# Re-exported: the console's pages, clients and fakes use them here.
__all__ = ["Move", "PreviewResult", "VolunteerToModerate"]

# --- Outbound: what the console publishes -------------------------------------------------


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Unique per message and stable across retries: a consumer drops a message seen before.
    message_id: str
    at: datetime


class CaseAssigned(_Message):
    """A coordinator hands a queue case to an association (the router decides "manual")."""

    kind: Literal["assign"] = "assign"
    reference: str
    association_id: str
    note: str
    coordinator_id: str


class CaseClosed(_Message):
    """A coordinator closes a queue case with an outcome instead of assigning it."""

    kind: Literal["close"] = "close"
    reference: str
    outcome: str
    coordinator_id: str


class DirectoryOverride(_Message):
    """A live change of an association's directory values (None: left as it is)."""

    kind: Literal["override"] = "override"
    association_id: str
    #: The staff account's id (a pseudonym: the router never learns a name or an e-mail).
    set_by: str
    paused: bool | None = None
    weekly_capacity: int | None = None
    response_deadline_days: float | None = None
    note: str = ""


class AnswerGiven(_Message):
    """An association's accept or decline, as the e-mail links give it."""

    kind: Literal["answer"] = "answer"
    referral_id: str
    reference: str
    association_id: str
    answer: Answer
    reason: DeclineReason | None = None
    comment: str | None = None
    #: With an acceptance: when the association will call the person, and who (a first name).
    call_by: datetime | None = None
    caller: str | None = None


class OutcomeRecorded(_Message):
    """What happened after an association accepted."""

    kind: Literal["outcome"] = "outcome"
    referral_id: str
    reference: str
    association_id: str
    outcome: str
    #: The day it happened: the contact's day for "contacted", else the day it was recorded.
    on: date


OutboundMessage = Annotated[
    CaseAssigned | CaseClosed | DirectoryOverride | AnswerGiven | OutcomeRecorded,
    Field(discriminator="kind"),
]


class OutboundUnavailable(Exception):
    """The message could not be handed over; it stays in the outbox and is sent again."""


class Outbound(Protocol):
    async def publish(self, message: OutboundMessage) -> None:
        """Hand `message` over for good (acknowledged), or raise `OutboundUnavailable`."""


# --- Mailer: invitations ------------------------------------------------------------------


class MailUnavailable(Exception):
    """The e-mail could not be sent; the invitation can be sent again from the users page."""


class Mailer(Protocol):
    async def send_invitation(
        self, *, to: str, name: str, link: str, invited_by: str, expires_at: datetime
    ) -> None: ...


# --- Policy preview (the router's `POST /internal/preview`) ------------------------------
# `Move` and `PreviewResult` are the router's answer as `rebond_contracts.preview` defines it.


class PreviewRejected(Exception):
    """The router refused the candidate directory, naming the association and field."""

    def __init__(self, message: str, association: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.association = association
        self.field = field


class PreviewUnavailable(Exception):
    """The router could not be asked (down, not plugged in)."""


class PreviewClient(Protocol):
    async def preview(self, directory_yaml: str) -> PreviewResult: ...


# --- Conferences (the events service's organiser API) -------------------------------------


class Conference(BaseModel):
    """A conference as the events API returns it (`EventPublic`), the fields the forms use."""

    id: str
    organiser: str
    title: str
    description: str = ""
    kind: str
    starts_at: datetime
    ends_at: datetime
    venue_address: str
    city: str
    department: str
    region: str
    online_url: str | None = None
    capacity: int
    status: str
    seats_left: int = 0
    confirmed: int = 0
    waitlisted: int = 0


class Registration(BaseModel):
    registration_id: str
    name: str
    email: str
    status: str
    waitlist_position: int | None = None
    registered_at: datetime


class StoryToModerate(BaseModel):
    """A success story waiting for moderation, as the events API shows it (no e-mail)."""

    id: str
    text: str
    first_name: str | None = None
    region: str
    stage: str
    sector: str
    failure_year: int
    helped: str | None = None
    submitted_at: datetime


class FieldError(BaseModel):
    """One entry of the events API's 422 `detail`: the field (dotted path) and its message."""

    field: str | None
    msg: str


class EventsInvalid(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.msg}" for e in errors))
        self.errors = errors


class EventsNotFound(Exception):
    pass


class EventsUnavailable(Exception):
    pass


class EventsClient(Protocol):
    """The organiser API, always on behalf of one association (its key is the adapter's)."""

    async def list_events(self, association: str) -> list[Conference]: ...
    async def get_event(self, association: str, event_id: str) -> Conference: ...
    async def create_event(self, association: str, data: dict[str, object]) -> Conference: ...
    async def update_event(
        self, association: str, event_id: str, changes: dict[str, object]
    ) -> Conference: ...
    async def cancel_event(self, association: str, event_id: str) -> Conference: ...
    async def registrations(self, association: str, event_id: str) -> list[Registration]: ...
    async def stories_to_moderate(self, association: str) -> list[StoryToModerate]: ...
    async def moderate_story(self, association: str, story_id: str, approve: bool) -> None: ...
    async def volunteers_to_moderate(self, association: str) -> list[VolunteerToModerate]: ...
    async def moderate_volunteer(
        self, association: str, volunteer_id: str, approve: bool
    ) -> None: ...


# --- What stands in until the real adapters are plugged -----------------------------------


class Unconnected:
    """Every port, refusing: messages wait in the outbox, pages say the link is not there yet.

    The production default until Kafka and the other services' clients are plugged in: nothing
    is lost and nothing pretends to have been sent."""

    async def publish(self, message: OutboundMessage) -> None:
        raise OutboundUnavailable("Kafka is not plugged into the coordination service yet")

    async def send_invitation(
        self, *, to: str, name: str, link: str, invited_by: str, expires_at: datetime
    ) -> None:
        raise MailUnavailable("no mailer is plugged into the coordination service yet")

    async def preview(self, directory_yaml: str) -> PreviewResult:
        raise PreviewUnavailable("the router's preview is not plugged in yet")

    async def list_events(self, association: str) -> list[Conference]:
        raise EventsUnavailable("the events service is not plugged in yet")

    async def get_event(self, association: str, event_id: str) -> Conference:
        raise EventsUnavailable("the events service is not plugged in yet")

    async def create_event(self, association: str, data: dict[str, object]) -> Conference:
        raise EventsUnavailable("the events service is not plugged in yet")

    async def update_event(
        self, association: str, event_id: str, changes: dict[str, object]
    ) -> Conference:
        raise EventsUnavailable("the events service is not plugged in yet")

    async def cancel_event(self, association: str, event_id: str) -> Conference:
        raise EventsUnavailable("the events service is not plugged in yet")

    async def registrations(self, association: str, event_id: str) -> list[Registration]:
        raise EventsUnavailable("the events service is not plugged in yet")

    async def stories_to_moderate(self, association: str) -> list[StoryToModerate]:
        raise EventsUnavailable("the events service is not plugged in yet")

    async def moderate_story(self, association: str, story_id: str, approve: bool) -> None:
        raise EventsUnavailable("the events service is not plugged in yet")

    async def volunteers_to_moderate(self, association: str) -> list[VolunteerToModerate]:
        raise EventsUnavailable("the events service is not plugged in yet")

    async def moderate_volunteer(self, association: str, volunteer_id: str, approve: bool) -> None:
        raise EventsUnavailable("the events service is not plugged in yet")
