"""The instrument model per (observatory, filter), and the index its rebuild reads frames by.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instrument_models",
        sa.Column(
            "observatory_id",
            sa.Integer(),
            sa.ForeignKey("observatories.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("filter", sa.String(32), primary_key=True),
        sa.Column("n_frames", sa.Integer(), nullable=False),
        sa.Column("first_mjd", sa.Double(), nullable=False),
        sa.Column("last_mjd", sa.Double(), nullable=False),
        sa.Column("reference_mjd", sa.Double(), nullable=False),
        sa.Column("colour_term", sa.Double()),
        sa.Column("colour_term_err", sa.Double()),
        sa.Column("colour_term_scatter", sa.Double()),
        sa.Column("n_colour_frames", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("zeropoint_median", sa.Double(), nullable=False),
        sa.Column("zeropoint_scatter", sa.Double(), nullable=False),
        sa.Column("zeropoint_trend", sa.Double(), nullable=False),
        sa.Column("exptime_scaling", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("exptime_ref", sa.Double()),
        sa.Column("depth_median", sa.Double()),
        sa.Column("depth_scatter", sa.Double()),
        sa.Column("fwhm_median", sa.Double()),
        sa.Column("fwhm_scatter", sa.Double()),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index(
        "ix_followups_observatory_filter_mjd", "followups", ["observatory_id", "filter", "mjd"]
    )


def downgrade() -> None:
    op.drop_index("ix_followups_observatory_filter_mjd", table_name="followups")
    op.drop_table("instrument_models")
