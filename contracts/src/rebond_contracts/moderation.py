"""The peer volunteers waiting for a moderator: the events service's
`GET /v1/moderation/volunteers` answers them, and the coordination console's moderation page
reads them (issue 24). One shape on both sides, so the console reads what the events API writes.

Never a volunteer's contact nor their address: a moderator decides on what the volunteer said
about themself, and whom they are introduced to is not the console's business.
"""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel


class VolunteerStatus(StrEnum):
    #: Signed up, address not confirmed yet.
    UNCONFIRMED = "unconfirmed"
    #: Confirmed, waiting for a moderator.
    PENDING = "pending"
    APPROVED = "approved"
    PAUSED = "paused"
    #: A side of one of their matches reported a problem: introduced to nobody until a
    #: moderator approves them again (or declines them: deleted).
    REPORTED = "reported"


class VolunteerForModerator(BaseModel):
    """A volunteer as a moderator reviews them: not their contact, nor their address."""

    id: str
    status: VolunteerStatus
    pseudonym: str
    region: str
    stage: str
    sector: str
    availability: str
    monthly_limit: int
    created_at: datetime
    #: Who reported a problem with their latest reported match (`person` or `volunteer`).
    reported_by: str | None = None
