"""Many daemons on one database: a lease per station, one daemon-state row per run, items per station.

The last single-daemon heartbeat becomes every station's (expired) lease, so the
first daemon after the upgrade catches up from the moment the old one was last alive.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("daemonstate", schema=None) as batch_op:
        batch_op.add_column(sa.Column("instance", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("stations", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_daemonstate_instance"), ["instance"], unique=False)
    op.create_table(
        "stationlease",
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("instance", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("acquired_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("renewed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("released_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["station_id"], ["station.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("station_id"),
    )
    with op.batch_alter_table("stationlease", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stationlease_instance"), ["instance"], unique=False)
    op.create_table(
        "contentstation",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["contentitem.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["station_id"], ["station.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id", "station_id"),
    )
    connection = op.get_bind()
    state = connection.execute(sa.text("SELECT pid, host, heartbeat_at, stopped_at FROM daemonstate "
                                       "WHERE heartbeat_at IS NOT NULL ORDER BY id DESC")).first()
    if state is not None:
        connection.execute(sa.text(
            "INSERT INTO stationlease (station_id, generation, holder, instance, acquired_at, renewed_at, "
            "expires_at, released_at) SELECT id, 1, :holder, 'before-leases', :seen, :seen, :seen, :stopped "
            "FROM station"), {"holder": f"{state.host}:{state.pid}", "seen": state.heartbeat_at,
                              "stopped": state.stopped_at})


def downgrade() -> None:
    op.drop_table("contentstation")
    with op.batch_alter_table("stationlease", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stationlease_instance"))
    op.drop_table("stationlease")
    with op.batch_alter_table("daemonstate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_daemonstate_instance"))
        batch_op.drop_column("stations")
        batch_op.drop_column("instance")
