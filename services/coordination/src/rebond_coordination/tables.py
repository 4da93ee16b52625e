"""The coordination store's tables (SQLAlchemy core). The schema itself is made by the Alembic
migrations in `migrations/versions/`; `tests/test_migrations.py` checks the two agree.

Every instant is a `UTCDateTime` (aware UTC in and out, on SQLite and PostgreSQL).

Personal data kept, and why:
- `users`: staff e-mail and name (accounts);
- `cases.contact`: call-back details, only when the person agreed to be called back by the
  grouping; `referrals.contact`, `.message`, `.distress`: what the person agreed to share with
  the association. All are deleted when the person withdraws (`projections.withdrawn`).
The audit log and the outbox never hold contact details (the outbox holds an association's
decline comment, which the form asks to keep free of personal details).
"""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from rebond_sql.types import UTCDateTime

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    #: Trimmed and lower-cased: one account per address.
    Column("email", String(254), nullable=False, unique=True),
    Column("name", String(120), nullable=False),
    Column("role", String(20), nullable=False),
    Column("association_id", String(40), index=True),
    #: The departments of the member's antenna (JSON list); None: the whole association.
    Column("departments", JSON),
    Column("antenna", String(120)),
    Column("admin", Boolean, nullable=False, default=False),
    #: argon2id; None until the invitation is accepted.
    Column("password_hash", Text),
    Column("totp_secret", String(64)),
    #: The last TOTP time step accepted: a code is never accepted twice.
    Column("totp_last_counter", Integer),
    Column("active", Boolean, nullable=False),
    Column("failed_sign_ins", Integer, nullable=False, default=0),
    Column("locked_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_sign_in_at", UTCDateTime),
)

sessions = Table(
    "sessions",
    metadata,
    #: SHA-256 of the cookie's random token: the table alone opens no session.
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

invitations = Table(
    "invitations",
    metadata,
    #: SHA-256 of the link's random token.
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("invited_by", String(36), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
)

cases = Table(
    "cases",
    metadata,
    Column("reference", String(32), primary_key=True),
    Column("urgent", Boolean, nullable=False),
    Column("stage", String(40)),
    Column("region", String(8)),
    Column("department", String(3)),
    Column("needs", JSON),
    Column("cause", String(40), nullable=False),
    #: [{association_id, outcome, reason, comment}]: what each association answered.
    Column("tried", JSON, nullable=False),
    #: Call-back details (first_name, email, phone, preferred_channel) or None.
    Column("contact", JSON),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("status", String(20), nullable=False),
    Column("claimed_by", String(36)),
    Column("claimed_at", UTCDateTime),
    Column("assigned_to", String(40)),
    Column("note", Text),
    Column("outcome", String(40)),
    Column("resolved_by", String(36)),
    Column("resolved_at", UTCDateTime),
    Index("ix_cases_queue", "status", "urgent", "queued_at"),
)

referrals = Table(
    "referrals",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("reference", String(32), nullable=False, index=True),
    Column("association_id", String(40), nullable=False),
    Column("urgent", Boolean, nullable=False),
    Column("stage", String(40)),
    Column("region", String(8)),
    Column("department", String(3)),
    Column("needs", JSON),
    Column("contact", JSON),
    Column("message", Text),
    Column("distress", String(20)),
    #: Why the association was chosen: [{code, fr, en}].
    Column("reasons", JSON, nullable=False),
    Column("offered_at", UTCDateTime, nullable=False),
    Column("respond_by", UTCDateTime),
    Column("status", String(20), nullable=False),
    Column("decline_reason", String(20)),
    Column("comment", Text),
    Column("answered_at", UTCDateTime),
    #: The member who answered here; None when the answer came through the e-mail link.
    Column("answered_by", String(36)),
    Column("outcome", String(30)),
    Column("contacted_on", String(10)),
    Column("outcome_at", UTCDateTime),
    Column("withdrawn_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    #: With an acceptance: when the association will call the person, and who (a first name).
    Column("call_by", UTCDateTime),
    Column("caller", String(60)),
    #: The antenna the referral is for (`ReferralV1.antenna`'s name); None: the association.
    #: Not personal data: it stays after a withdrawal, as the department does.
    Column("antenna", String(120)),
    Index("ix_referrals_inbox", "association_id", "department", "offered_at"),
)

directory = Table(
    "directory",
    metadata,
    Column("association_id", String(40), primary_key=True),
    Column("paused", Boolean, nullable=False),
    Column("weekly_capacity", Integer, nullable=False),
    Column("response_deadline_days", Float, nullable=False),
    Column("rule_set_version", String(100), nullable=False),
    Column("observed_at", UTCDateTime, nullable=False),
)

overrides = Table(
    "overrides",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("association_id", String(40), nullable=False, index=True),
    Column("paused", Boolean),
    Column("weekly_capacity", Integer),
    Column("response_deadline_days", Float),
    Column("note", Text, nullable=False),
    Column("requested_by", String(36), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    #: Set when the router says it applied it; until then the page shows "en attente".
    Column("applied_at", UTCDateTime),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    #: None for the command line (`add-user`) and for facts from other services.
    Column("actor_id", String(36)),
    Column("actor_name", String(120), nullable=False),
    Column("action", String(40), nullable=False),
    Column("association_id", String(40), index=True),
    Column("reference", String(32)),
    #: The object acted on when it is not a case: a referral, an account, an override.
    Column("subject", String(64)),
    #: Ids and choices only, never contact details.
    Column("detail", JSON, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(36), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    #: The message as `ports.OutboundMessage` JSON.
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
)

stat_facts = Table(
    "stat_facts",
    metadata,
    Column("fact_id", String(64), primary_key=True),
    Column("kind", String(30), nullable=False),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("region", String(8)),
    Column("stage", String(40)),
    Column("association_id", String(40)),
    Column("reason", String(20)),
    Column("seconds_to_answer", Float),
)

#: The person's answers to the 30-day follow-up, one per referral; no personal data.
follow_ups = Table(
    "follow_ups",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("reference", String(32), nullable=False, index=True),
    Column("association_id", String(40), nullable=False),
    Column("contacted", Boolean, nullable=False),
    Column("answered_at", UTCDateTime, nullable=False),
)

#: References whose person erased their data: what arrives of them later (a queue case or a
#: referral read after the erasure) is dropped. The reference is a pseudonym; nothing else kept.
erasures = Table(
    "erasures",
    metadata,
    Column("reference", String(32), primary_key=True),
    Column("erased_at", UTCDateTime, nullable=False),
)
