"""The events store's tables (SQLAlchemy Core), as the Alembic migrations make them.

Every instant is a `UTCDateTime` (aware in, aware UTC out). `migrations/` builds exactly these
tables (`tests/test_migrations.py` compares them); a change here is a new revision there.
"""

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from rebond_sql.erasure import tombstone_table
from rebond_sql.outbox import Outbox, outbox_table
from rebond_sql.types import UTCDateTime

metadata = MetaData()

conferences = Table(
    "events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("organiser", String(60), nullable=False, index=True),
    Column("title", String(150), nullable=False),
    Column("description", Text, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("venue_address", String(200), nullable=False),
    Column("city", String(100), nullable=False),
    Column("department", String(3), nullable=False),
    Column("region", String(5), nullable=False),
    Column("online_url", String(500), nullable=True),
    Column("capacity", Integer, nullable=False),
    Column("status", String(12), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_events_listing", "status", "starts_at"),
    Index("ix_events_region", "region", "department"),
)

registrations = Table(
    "registrations",
    metadata,
    #: Insertion order; ties of `queued_at` are broken by it.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("event_id", String(36), ForeignKey("events.id"), nullable=False),
    Column("name", String(120), nullable=False),
    #: As the person typed it: where their e-mails go.
    Column("email", String(254), nullable=False),
    #: `domain.email_digest`: one registration per person (variants of one mailbox included)
    #: and conference.
    Column("email_digest", String(64), nullable=False),
    Column("consent", Boolean, nullable=False),
    Column("locale", String(5), nullable=False),
    Column("status", String(12), nullable=False),
    #: When the person joined the waitlist (its order) or registered.
    Column("queued_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    #: When an e-mail carrying the cancellation link was last asked for.
    Column("link_sent_at", UTCDateTime, nullable=True),
    #: When the reminder before the conference was asked for (once per registration).
    Column("reminded_at", UTCDateTime, nullable=True),
    UniqueConstraint("event_id", "email_digest", name="uq_registrations_event_person"),
    Index("ix_registrations_event_status", "event_id", "status"),
)

invitations = Table(
    "invitations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("event_id", String(36), ForeignKey("events.id"), nullable=False),
    #: sha256 of the normalised e-mail: enough to invite once, without keeping the address.
    Column("email_digest", String(64), nullable=False),
    Column("reference", String(30), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("event_id", "email_digest", name="uq_invitations_event_person"),
)

#: A person who came through the questionnaire asked for erasure: the tombstone of their
#: reference, its SHA-256 only (`rebond_sql.erasure`), read before inviting anyone.
erasures = tombstone_table(metadata, "erasures")

#: Success stories (issue 24). `email` is kept only until the moderation outcome is written to
#: the outbox (the withdrawal link needs none: it is signed); it is never shown.
stories = Table(
    "stories",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("status", String(12), nullable=False),
    Column("text", Text, nullable=False),
    Column("first_name", String(80), nullable=True),
    Column("region", String(5), nullable=False),
    Column("stage", String(30), nullable=False),
    Column("sector", String(1), nullable=False),
    Column("failure_year", Integer, nullable=False),
    Column("helped", Text, nullable=True),
    Column("locale", String(5), nullable=False),
    Column("email", String(254), nullable=True),
    #: Why a moderator edited the story, saying the author agreed.
    Column("moderation_note", Text, nullable=True),
    Column("moderated_by", String(60), nullable=True),
    Column("submitted_at", UTCDateTime, nullable=False),
    Column("moderated_at", UTCDateTime, nullable=True),
    Index("ix_stories_status", "status", "region", "stage"),
)

#: Peer volunteers: people who bounced back and offer to talk with someone going through it.
#: `contact` is what they agreed to share with a person they are introduced to; `email` is
#: where the service writes to them. Neither is ever shown on a page.
peer_volunteers = Table(
    "peer_volunteers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("status", String(12), nullable=False),
    Column("pseudonym", String(80), nullable=False),
    Column("region", String(5), nullable=False),
    Column("stage", String(30), nullable=False),
    Column("sector", String(1), nullable=False),
    Column("contact_channel", String(10), nullable=False),
    Column("contact", String(254), nullable=False),
    Column("email", String(254), nullable=False),
    Column("availability", String(200), nullable=False),
    Column("monthly_limit", Integer, nullable=False),
    Column("locale", String(5), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_peer_volunteers_matching", "status", "region"),
)

#: People who asked for a peer (`peers.requests`), kept while they are being matched: what
#: they agreed to share, to introduce them to the next volunteer after a decline.
peer_requests = Table(
    "peer_requests",
    metadata,
    Column("reference", String(30), primary_key=True),
    Column("region", String(5), nullable=False),
    Column("stage", String(30), nullable=False),
    Column("sector", String(1), nullable=True),
    Column("first_name", String(60), nullable=False),
    Column("email", String(254), nullable=True),
    Column("phone", String(30), nullable=True),
    Column("locale", String(5), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    #: Whether each step of their match may be counted in the anonymous statistics.
    Column("statistics_consent", Boolean, nullable=False, server_default=false()),
)

#: Each volunteer proposed to a person; `declined_by` once either side declined.
peer_matches = Table(
    "peer_matches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("reference", String(30), nullable=False, index=True),
    Column("volunteer_id", String(36), nullable=False),
    Column("status", String(12), nullable=False),
    Column("declined_by", String(10), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_peer_matches_volunteer", "volunteer_id", "created_at"),
)

#: The approved volunteers who said they will attend a `peer_exchange` conference and agreed to
#: be listed on its public page (by pseudonym, region and stage only). A pause, a report or an
#: erasure deletes their rows (`community_sql.SqlCommunity`); so does the retention, once the
#: conference is over (`privacy.anonymise`).
peer_attendances = Table(
    "peer_attendances",
    metadata,
    Column("volunteer_id", String(36), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_peer_attendances_event", "event_id"),
)

#: What the events service publishes, written with the change it announces (`rebond_sql.outbox`).
#: A message's subject is its record key: the conference id (conferences, registrations) or the
#: submission reference (invitations, which an erasure drops by that subject).
OUTBOX = Outbox(outbox_table(metadata, "events_outbox"))
