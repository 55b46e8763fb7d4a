"""Migration 0008: rows made before the file store (absolute paths) name their objects by key."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.helpers import ROOT

SHA = "ab" * 32


def alembic(url: str, *args: str) -> None:
    # Alembic reads the URL from the settings, once per process: a process per step.
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), *args],
        env={**os.environ, "CALSERV_DATABASE_URL": url},
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_absolute_paths_become_keys_and_back():
    base = os.environ["CALSERV_DATABASE_URL"].rsplit("/", 1)[0]
    name = f"calserv_keys_{os.getpid()}"
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        c.execute(text(f"CREATE DATABASE {name}"))
    url = f"{base}/{name}"
    db = create_engine(url, poolclass=NullPool)
    try:
        alembic(url, "upgrade", "0003")
        with db.begin() as c:
            c.execute(text(
                "INSERT INTO observatories (id, name, lon, lat, filters, key_prefix, key_salt, "
                "key_hash) VALUES (1, 'o', 0, 0, '{}', 'p', 's', 'h');"
                "INSERT INTO alerts (id, ivorn, name, ra, dec) VALUES (1, 'ivo://m', 'm', 0, 0);"
                f"INSERT INTO uploads (id, sha256, size, path) VALUES "
                f"(1, '{SHA}', 1, '/srv/calserv/var/uploads/ab/{SHA}.cat');"
                "INSERT INTO jobs (id, idempotency_key, observatory_id, alert_id, upload_id, "
                "params, state, image_path) VALUES ('j1', 'k1', 1, 1, 1, '{}', 'succeeded', "
                "'/srv/calserv/var/plots/j1.png'), ('j2', 'k2', 1, 1, 1, '{}', 'failed', NULL)"
            ))  # fmt: skip
        alembic(url, "upgrade", "0008")
        with db.connect() as c:
            assert c.scalar(text("SELECT path FROM uploads")) == f"uploads/ab/{SHA}.cat"
            images = dict(c.execute(text("SELECT id, image_path FROM jobs")).all())
        assert images == {"j1": "plots/j1.png", "j2": None}
        alembic(url, "downgrade", "0003")  # back under the store's directory (the settings')
        with db.connect() as c:
            upload = c.scalar(text("SELECT path FROM uploads"))
            image = c.scalar(text("SELECT image_path FROM jobs WHERE id='j1'"))
        root = os.environ["CALSERV_STORAGE_URL"]
        assert (upload, image) == (f"{root}/uploads/ab/{SHA}.cat", f"{root}/plots/j1.png")
    finally:
        db.dispose()
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
