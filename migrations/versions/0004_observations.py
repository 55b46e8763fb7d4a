"""Observations: withdrawn and superseded follow-up points, and a light-curve version per alert.

- `followups.withdrawn_at`: the owning observatory withdrew the point (DELETE /followup/<id>); it
  leaves light curves and lists but stays for audit.
- `followups.superseded_by`: a re-upload of the same observation with other calibration options
  replaced this point; it stays for audit.
- `alerts.discovered`: the discovery date of the Gaia alerts list (its `Date` column).
- `alerts.points_version` / `alerts.points_changed_at`: bumped by a trigger on every change of the
  alert's follow-up points, so rendered light curves are cached per version and answered with
  ETag / Last-Modified without reading the points.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("followups", sa.Column("withdrawn_at", sa.DateTime(timezone=True)))
    op.add_column(
        "followups",
        sa.Column(
            "superseded_by",
            sa.Integer,
            sa.ForeignKey("followups.id", ondelete="SET NULL", name="fk_followups_superseded_by"),
        ),
    )
    op.add_column("alerts", sa.Column("discovered", sa.String(40)))
    op.add_column(
        "alerts", sa.Column("points_version", sa.Integer, nullable=False, server_default="0")
    )
    op.add_column(
        "alerts",
        sa.Column(
            "points_changed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )
    op.execute(
        """
        CREATE FUNCTION bump_alert_points_version() RETURNS trigger AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                UPDATE alerts SET points_version = points_version + 1,
                                  points_changed_at = clock_timestamp()
                 WHERE id = OLD.alert_id;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') AND (TG_OP = 'INSERT' OR NEW.alert_id <> OLD.alert_id)
            THEN
                UPDATE alerts SET points_version = points_version + 1,
                                  points_changed_at = clock_timestamp()
                 WHERE id = NEW.alert_id;
            END IF;
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER followups_bump_alert_version AFTER INSERT OR UPDATE OR DELETE "
        "ON followups FOR EACH ROW EXECUTE FUNCTION bump_alert_points_version()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER followups_bump_alert_version ON followups")
    op.execute("DROP FUNCTION bump_alert_points_version()")
    op.drop_column("alerts", "points_changed_at")
    op.drop_column("alerts", "points_version")
    op.drop_column("alerts", "discovered")
    op.drop_column("followups", "superseded_by")
    op.drop_column("followups", "withdrawn_at")
