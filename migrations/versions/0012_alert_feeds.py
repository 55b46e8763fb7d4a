"""Alert feeds: alerts keep their TNS name and the feed that keeps them; each feed's latest sync.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("tns_name", sa.String(40), nullable=True))
    op.add_column("alerts", sa.Column("feed", sa.Text(), nullable=True))
    op.create_index("uq_alerts_tns_name", "alerts", ["tns_name"], unique=True)
    op.create_table(
        "alert_feeds",
        sa.Column("url", sa.Text(), primary_key=True),
        sa.Column("kind", sa.String(16)),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_success_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text()),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("alerts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("added", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("removed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rejected", JSONB(), nullable=False, server_default="[]"),
        sa.Column("rejected_count", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("alert_feeds")
    op.drop_index("uq_alerts_tns_name", table_name="alerts")
    op.drop_column("alerts", "feed")
    op.drop_column("alerts", "tns_name")
