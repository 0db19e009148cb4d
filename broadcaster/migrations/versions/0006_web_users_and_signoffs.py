"""Web console accounts; who approved an item and who announced it, and when.

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webuser",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webuser", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webuser_name"), ["name"], unique=True)
    with op.batch_alter_table("contentitem", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approved_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("approved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("announced_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("announced_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contentitem", schema=None) as batch_op:
        batch_op.drop_column("announced_at")
        batch_op.drop_column("announced_by")
        batch_op.drop_column("approved_at")
        batch_op.drop_column("approved_by")
    with op.batch_alter_table("webuser", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webuser_name"))
    op.drop_table("webuser")
