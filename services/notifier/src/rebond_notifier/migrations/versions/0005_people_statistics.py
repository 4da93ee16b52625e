"""The person's consent to anonymous statistics (`notifier_people.statistics`), from their first
decision, told with their follow-up answer so that the console counts only consenting people.
People noted before it count as not consenting (never counted without a consent).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("notifier_people") as table:
        table.add_column(
            sa.Column("statistics", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("notifier_people") as table:
        table.drop_column("statistics")
