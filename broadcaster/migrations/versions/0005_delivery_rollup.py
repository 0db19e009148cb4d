"""The delivery log counted by hour and the SMS reach per topic, kept by triggers; counted from the log now.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from broadcaster.models import REACHED_WHERE
from broadcaster.reports import rollup

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deliveryhour",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hour", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("bulletin_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("topic_id", "channel", "hour", "station_id", "bulletin_id", "campaign_id", "status",
                            name="uq_deliveryhour_key"),
    )
    op.create_index("ix_deliveryhour_station", "deliveryhour", ["station_id", "hour"])
    op.create_table(
        "deliveryreach",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("first_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("topic_id", "recipient", name="uq_deliveryreach_key"),
    )
    op.create_index("ix_deliveryreach_window", "deliveryreach", ["topic_id", "first_at", "last_at", "recipient"])
    op.create_index("ix_delivery_reached", "delivery", ["recipient", "topic_id", "created_at"],
                    sqlite_where=sa.text(REACHED_WHERE), postgresql_where=sa.text(REACHED_WHERE))
    connection = op.get_bind()
    tables = ("deliveryhour", "deliveryreach")  # 0007 adds the third
    rollup.install_triggers(connection, tables)
    rollup.rebuild(connection, tables)


def downgrade() -> None:
    rollup.drop_triggers(op.get_bind())
    op.drop_index("ix_delivery_reached", table_name="delivery")
    op.drop_index("ix_deliveryreach_window", table_name="deliveryreach")
    op.drop_table("deliveryreach")
    op.drop_index("ix_deliveryhour_station", table_name="deliveryhour")
    op.drop_table("deliveryhour")
