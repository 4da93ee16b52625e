"""The float instants become `UTCDateTime`, values kept.

Revision ID: 0002
Revises: 0001
"""

from rebond_sql.migrations import epochs_to_utc, utc_to_epochs

revision = "0002"
down_revision = "0001"
COLUMNS = {"at": False, "seen_at": True}


def upgrade() -> None:
    epochs_to_utc("sample_notes", ["id"], COLUMNS)


def downgrade() -> None:
    utc_to_epochs("sample_notes", ["id"], COLUMNS)
