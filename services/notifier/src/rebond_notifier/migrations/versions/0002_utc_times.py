"""Every instant an aware UTC datetime (`UTCDateTime`) instead of float seconds since the epoch,
values kept; the delivery ids never given twice on SQLite.

The index of the dispatch rounds' query (status, next_attempt_at) is made again over the new
column. On SQLite `notifier_deliveries` is copied (as every retyped table is) with
AUTOINCREMENT: without it SQLite gives a deleted newest row's id again, and a worker recording
the outcome of a delivery an erasure deleted meanwhile would record it on the new row.
"""

from alembic import op

from rebond_sql.migrations import epochs_to_utc, utc_to_epochs

revision = "0002"
down_revision = "0001"

#: Each table's key and its time columns (name: nullable).
TIMES: dict[str, tuple[list[str], dict[str, bool]]] = {
    "notifier_deliveries": (
        ["id"],
        {"next_attempt_at": False, "locked_until": True, "created_at": False},
    ),
    "notifier_answers": (["referral_id"], {"answered_at": False}),
    "notifier_referral_states": (["referral_id"], {"at": False}),
    "notifier_referrals": (["referral_id"], {"noted_at": False, "published_at": True}),
    "notifier_tombstones": (["reference_sha256"], {"erased_at": False}),
}
DUE = ("ix_notifier_deliveries_due", "notifier_deliveries", ["status", "next_attempt_at"])


def upgrade() -> None:
    op.drop_index(DUE[0], DUE[1])
    for table, (key, columns) in TIMES.items():
        kwargs = {"sqlite_autoincrement": True} if table == "notifier_deliveries" else None
        epochs_to_utc(table, key, columns, kwargs)
    op.create_index(*DUE)


def downgrade() -> None:
    op.drop_index(DUE[0], DUE[1])
    for table, (key, columns) in TIMES.items():
        utc_to_epochs(table, key, columns)
    op.create_index(*DUE)
