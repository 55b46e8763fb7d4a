"""Follow-up rows keep the result's target flags, warnings and zero-point model order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "followups", sa.Column("target_flags", JSONB, nullable=False, server_default="[]")
    )
    op.add_column("followups", sa.Column("warnings", JSONB, nullable=False, server_default="[]"))
    op.add_column(
        "followups", sa.Column("zeropoint_order", sa.Integer, nullable=False, server_default="0")
    )


def downgrade() -> None:
    for column in ("zeropoint_order", "warnings", "target_flags"):
        op.drop_column("followups", column)
