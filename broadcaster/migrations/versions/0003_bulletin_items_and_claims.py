"""What a bulletin carries becomes a table; bulletins record who claimed them and their player.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bulletin", schema=None) as batch_op:
        batch_op.add_column(sa.Column("composed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("valid_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("player_pid", sa.Integer(), nullable=True))
    op.create_table(
        "bulletinitem",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bulletin_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("readings", sa.JSON(), nullable=False),
        sa.Column("dropped", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["bulletin_id"], ["bulletin.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_id"], ["contentitem.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bulletin_id", "position", name="uq_bulletin_item_position"),
    )
    with op.batch_alter_table("bulletinitem", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bulletinitem_bulletin_id"), ["bulletin_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_bulletinitem_item_id"), ["item_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bulletinitem", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bulletinitem_item_id"))
        batch_op.drop_index(batch_op.f("ix_bulletinitem_bulletin_id"))
    op.drop_table("bulletinitem")
    with op.batch_alter_table("bulletin", schema=None) as batch_op:
        for name in ("player_pid", "claimed_by", "attempts", "valid_until", "composed_at"):
            batch_op.drop_column(name)
