"""deploy/services.sh gives the local PostgreSQL password (scram) logins with a secret generated
under var/, upgrades a trust cluster in place, and config.py builds the URL from that secret.

Runs its own cluster and Redis on free ports under a temporary var/, never the shared ones."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from tests.helpers import ROOT, free_port


@pytest.fixture()
def instance():
    # Not under pytest's tmp_path: its parents are private to root, and the cluster runs as
    # `postgres` when the tests run as root.
    top = Path(tempfile.mkdtemp(prefix="calserv-pgauth-"))
    top.chmod(0o755)
    var = top / "var"
    env = {
        **os.environ,
        "CALSERV_VAR_DIR": str(var),
        "CALSERV_PG_PORT": str(free_port()),
        "CALSERV_REDIS_PORT": str(free_port()),
        "CALSERV_DATABASES": "calserv",
    }
    env.pop("CALSERV_DATABASE_URL", None)

    def services(cmd: str) -> str:
        done = subprocess.run(
            [str(ROOT / "deploy" / "services.sh"), cmd], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    yield var, env, services
    services("stop")
    shutil.rmtree(top, ignore_errors=True)


def url_of(env: dict, password: str | None) -> str:
    login = f"calserv:{password}" if password else "calserv"
    return f"postgresql+psycopg2://{login}@127.0.0.1:{env['CALSERV_PG_PORT']}/calserv"


def can_log_in(url: str) -> bool:
    eng = create_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            return conn.execute(text("SELECT 1")).scalar() == 1
    except OperationalError:
        return False
    finally:
        eng.dispose()


def configured_url(env: dict) -> str:
    """The database URL config.py builds in that environment (a fresh interpreter)."""
    code = "from config import settings; print(settings().database_url)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    return out.stdout.strip()


def test_password_logins_and_in_place_upgrade(instance):
    var, env, services = instance
    services("start")
    secret = var / "pg-password"
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_text().strip()) >= 32
    assert not can_log_in(url_of(env, None))
    assert not can_log_in(url_of(env, "wrong"))
    assert can_log_in(configured_url(env))
    assert secret.read_text().strip() in configured_url(env)

    # A cluster made before passwords: trust for TCP, no secret. `start` upgrades it in place.
    hba = var / "pg" / "pg_hba.conf"
    hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))
    secret.unlink()
    subprocess.run(
        [
            *("psql", "-h", str(var / "run"), "-p", env["CALSERV_PG_PORT"], "-U", "postgres"),
            *("-qc", "ALTER ROLE calserv PASSWORD NULL", "-c", "SELECT pg_reload_conf()"),
        ],
        check=True,
        capture_output=True,
    )
    assert can_log_in(url_of(env, None))  # the old, open state
    out = services("start")
    assert "now need the password" in out
    assert not can_log_in(url_of(env, None))
    assert can_log_in(configured_url(env))
    first = secret.read_text()

    out = services("start")  # idempotent: nothing to upgrade, the same secret
    assert "now need the password" not in out and secret.read_text() == first
    assert can_log_in(configured_url(env))
