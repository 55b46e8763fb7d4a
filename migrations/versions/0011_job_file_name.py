"""Jobs keep the name of the file they were sent as, and an observatory's jobs are listed newest
first (`GET /jobs`) from an index.

The upload row is shared by every job of the same bytes, so the name a job was sent under is the
job's own. Older jobs have none (NULL).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("file_name", sa.String(300), nullable=True))
    op.create_index("ix_jobs_observatory_created", "jobs", ["observatory_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_observatory_created", table_name="jobs")
    op.drop_column("jobs", "file_name")
