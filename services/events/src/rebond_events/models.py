"""HTTP shapes: what organisers and people send (`*In`) is not what they get back (`*Public`)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from rebond_contracts.geography import REGION_OF_DEPARTMENT
from rebond_contracts.payloads import ConferenceKind
from rebond_contracts.questionnaire import Locale, Region
from rebond_events.domain import (
    NAME_MAX_LENGTH,
    name_problem,
    one_line_problem,
    tidy_name,
    to_paris,
)

_PROBLEMS = {
    "control_characters": "Control characters, line breaks and direction overrides are not "
    "allowed here",
    "name_length": f"A name has 1 to {NAME_MAX_LENGTH} characters",
    "name_characters": "A name holds letters, spaces, apostrophes, hyphens and the dots of "
    "initials only",
}


def _one_line(value: str) -> str:
    if (problem := one_line_problem(value)) is not None:
        raise PydanticCustomError(problem, _PROBLEMS[problem])
    return value


def _person_name(value: str) -> str:
    value = tidy_name(value)
    if (problem := name_problem(value)) is not None:
        raise PydanticCustomError(problem, _PROBLEMS[problem])
    return value


def _paris_time(value: datetime) -> datetime:
    """In Paris time, for years 2000 to 9998 (converting 0001-01-01 or 9999-12-31 across time
    zones leaves the calendar: an overflow, a 500, not a 422)."""
    if not 2000 <= value.year <= 9998:
        raise PydanticCustomError("datetime_range", "A time between the years 2000 and 9998")
    return to_paris(value)


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
#: One line of text that may reach an e-mail's subject or a calendar's summary.
Line = Annotated[Text, AfterValidator(_one_line)]
#: A person's name as the portal takes it (`domain.name_problem` says why these rules).
PersonName = Annotated[str, AfterValidator(_person_name)]


class EventIn(BaseModel):
    """What an organiser sends to create a conference. Naive times are Europe/Paris times."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[Line, StringConstraints(max_length=150)]
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)] = ""
    kind: ConferenceKind
    starts_at: datetime = Field(examples=["2027-01-14T18:30:00"])
    ends_at: datetime = Field(examples=["2027-01-14T20:30:00"])
    venue_address: Annotated[Line, StringConstraints(max_length=200)]
    city: Annotated[Line, StringConstraints(max_length=100)]
    region: Region
    department: str = Field(examples=["33"])
    online_url: AnyHttpUrl | None = None
    capacity: int = Field(ge=1, le=100_000)

    @field_validator("starts_at")
    @classmethod
    def _paris_start(cls, value: datetime) -> datetime:
        return _paris_time(value)

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        value = _paris_time(value)
        starts_at = info.data.get("starts_at")
        if starts_at is not None and value <= starts_at:
            raise PydanticCustomError("ends_before_start", "ends_at must be after starts_at")
        return value

    @field_validator("department")
    @classmethod
    def _department_of_region(cls, value: str, info: ValidationInfo) -> str:
        if value not in REGION_OF_DEPARTMENT:
            raise PydanticCustomError(
                "unknown_department", "Unknown department code {department}", {"department": value}
            )
        region = info.data.get("region")
        if region is not None and REGION_OF_DEPARTMENT[value] != region:
            raise PydanticCustomError(
                "department_region_mismatch",
                "Department {department} is not in region {region}",
                {"department": value, "region": region},
            )
        return value


class EventPatch(BaseModel):
    """A partial update: only the fields given change; the result is checked like `EventIn`."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    description: str | None = None
    kind: ConferenceKind | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    venue_address: str | None = None
    city: str | None = None
    region: Region | None = None
    department: str | None = None
    online_url: AnyHttpUrl | None = None
    capacity: int | None = Field(default=None, ge=1, le=100_000)

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class EventPublic(BaseModel):
    id: str
    organiser: str
    title: str
    description: str
    kind: ConferenceKind
    starts_at: datetime
    ends_at: datetime
    timezone: str = "Europe/Paris"
    venue_address: str
    city: str
    department: str
    region: str
    online_url: str | None
    capacity: int
    status: str
    version: int
    seats_left: int
    confirmed: int
    waitlisted: int
    page_url: str
    ics_url: str


class EventPage(BaseModel):
    items: list[EventPublic]
    page: int
    per_page: int
    total: int


class RegistrationIn(BaseModel):
    """What a person sends to register. Consent to be contacted about the event is required."""

    model_config = ConfigDict(extra="forbid")

    name: PersonName = Field(examples=["Claire"])
    email: EmailStr
    consent: bool
    locale: Locale = Locale.FR

    @field_validator("consent")
    @classmethod
    def _consented(cls, value: bool) -> bool:
        if not value:
            raise PydanticCustomError(
                "consent_required", "Consent is required to register for a conference"
            )
        return value


#: The answer to a public submission (a story, a volunteer's sign-up): kept, and what comes next
#: goes by e-mail.
class Received(BaseModel):
    status: Literal["received"] = "received"
    message: str


class RegistrationReceived(BaseModel):
    """The answer to a registration, the same whether the address was new or already
    registered: what comes next (a seat or the waitlist, and the cancellation link) goes by
    e-mail to the address registered, never in this reply."""

    event_id: str
    status: Literal["received"] = "received"
    message: str


class LinkRequest(BaseModel):
    """The token of an e-mailed link, sent in the body (never in a URL that logs keep)."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9_.\-]+$")


class CancelRequest(LinkRequest):
    """The token of a cancellation link, sent in the body (never in a URL that logs keep)."""


class RegistrationForOrganiser(BaseModel):
    registration_id: str
    name: str
    email: str
    status: str
    waitlist_position: int | None
    registered_at: datetime


class CancelResult(BaseModel):
    registration_id: str
    status: str
    promoted: int = Field(description="How many waitlisted people got a seat because of it.")
