"""The SMS reach per station as well, kept by triggers, counted from the log now; a covering report index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from broadcaster.reports import rollup

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deliverystationreach",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("first_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("station_id", "topic_id", "recipient", name="uq_deliverystationreach_key"),
    )
    op.create_index("ix_deliverystationreach_window", "deliverystationreach",
                    ["station_id", "topic_id", "first_at", "last_at", "recipient"])
    op.create_index("ix_deliveryhour_report", "deliveryhour", ["topic_id", "channel", "hour", "status", "station_id",
                                                               "bulletin_id", "campaign_id", "n", "seconds"])
    connection = op.get_bind()
    rollup.install_triggers(connection)
    rollup.rebuild(connection, ("deliverystationreach",))


def downgrade() -> None:
    connection = op.get_bind()
    rollup.install_triggers(connection, ("deliveryhour", "deliveryreach"))
    op.drop_index("ix_deliverystationreach_window", table_name="deliverystationreach")
    op.drop_table("deliverystationreach")
    op.drop_index("ix_deliveryhour_report", table_name="deliveryhour")
