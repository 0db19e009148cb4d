"""Report index covers the recipient, so 'people reached' reads only the index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_report")
        batch_op.create_index("ix_delivery_report", ["topic_id", "channel", "status", "created_at", "recipient"])


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_report")
        batch_op.create_index("ix_delivery_report", ["topic_id", "channel", "status", "created_at"])
