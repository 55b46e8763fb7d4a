"""Uploads and plots are named by their key in the store (`blobstore`), not by a local path.

The old rows held absolute paths under UPLOAD_DIR/PLOT_DIR; the store keeps the same files under
`uploads/<sha[:2]>/<sha>.cat` and `plots/<job>.png` of CALSERV_STORAGE_URL (by default VAR_DIR,
where var/uploads and var/plots already are).

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-30
"""

from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE uploads SET path = 'uploads/' || left(sha256, 2) || '/' || sha256 || '.cat' "
        "WHERE path LIKE '/%'"
    )
    op.execute(
        "UPDATE jobs SET image_path = 'plots/' || id || '.png' WHERE image_path LIKE '/%'"
    )


def downgrade() -> None:
    from config import settings  # the old absolute paths: under the store's directory

    root = settings().storage_url.removeprefix("file://").rstrip("/")
    if root.startswith("s3://"):
        raise RuntimeError("downgrade needs a local store: objects in s3:// have no local path")
    op.execute(f"UPDATE uploads SET path = '{root}/' || path WHERE path NOT LIKE '/%'")
    op.execute(f"UPDATE jobs SET image_path = '{root}/' || image_path WHERE image_path NOT LIKE '/%'")
