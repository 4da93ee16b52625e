"""Registrations keep the address as typed and identify the person by a digest of its
normalised form (case, `+tag`, Gmail dots); when the cancellation link was last sent.

Existing rows get the digest of their address. Two rows of one conference that the new rule
counts as one person (`claire@…` and `claire+x@…`, registered before it) both stay: the later
one gets the digest of its address as it was stored instead, so nobody loses a seat.
"""

import hashlib

import sqlalchemy as sa
from alembic import op

from rebond_events.domain import email_digest

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(sa.Column("email_digest", sa.String(64), nullable=True))
        batch.add_column(sa.Column("link_sent_at", sa.DateTime(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT seq, event_id, email FROM registrations ORDER BY seq")
    ).all()
    seen: set[tuple[str, str]] = set()
    for seq, event_id, email in rows:
        digest = email_digest(email)
        if (event_id, digest) in seen:
            digest = hashlib.sha256(f"stored:{email}".encode()).hexdigest()
        seen.add((event_id, digest))
        connection.execute(
            sa.text("UPDATE registrations SET email_digest = :digest WHERE seq = :seq"),
            {"digest": digest, "seq": seq},
        )
    with op.batch_alter_table("registrations") as batch:
        batch.alter_column("email_digest", existing_type=sa.String(64), nullable=False)
        batch.drop_constraint("uq_registrations_event_email", type_="unique")
        batch.create_unique_constraint(
            "uq_registrations_event_person", ["event_id", "email_digest"]
        )


def downgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.drop_constraint("uq_registrations_event_person", type_="unique")
        batch.create_unique_constraint("uq_registrations_event_email", ["event_id", "email"])
        batch.drop_column("link_sent_at")
        batch.drop_column("email_digest")
