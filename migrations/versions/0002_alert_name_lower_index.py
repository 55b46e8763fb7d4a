"""Index alerts by lower(name): uploads look alerts up by name case-insensitively.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_alerts_lower_name ON alerts (lower(name))")


def downgrade() -> None:
    op.execute("DROP INDEX ix_alerts_lower_name")
