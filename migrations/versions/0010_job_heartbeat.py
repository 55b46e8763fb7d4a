"""Running jobs carry a heartbeat: the worker stamps `jobs.heartbeat_at` every few seconds, so
the sweeper re-sends a job whose worker died within seconds instead of waiting for the broker's
visibility timeout.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "heartbeat_at")
