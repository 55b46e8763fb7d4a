"""Login sessions end on the server: a per-observatory session generation, raised by logout.

A login cookie carries the generation it was issued under; a cookie copied before a logout then
names an old generation and is refused.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "observatories",
        sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("observatories", "session_generation")
