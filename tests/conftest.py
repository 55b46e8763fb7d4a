"""Fixtures for tests against the real services: PostgreSQL, Redis and a Celery worker process.

`make test` starts PostgreSQL and Redis; this file points calserv at a test database and a test
Redis database, recreates the schema with the Alembic migrations, builds the reference store,
and runs a real `celery worker` subprocess for the end-to-end tests.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from config import local_database_url, local_redis_url
from tests.helpers import DATA, ROOT, TMP, Gunicorn, WorkerProcess

# Each test session gets its own database and queue, so concurrent runs never meet. The worker
# and gunicorn subprocesses, and this process's settings (`config.settings()`), read these.
# The base URLs are the local services' (deploy/services.sh), with their generated passwords.
_BASE_DB_URL = os.environ.get("CALSERV_DATABASE_URL") or local_database_url(
    "calserv_test",
    Path(os.environ.get("CALSERV_VAR_DIR", ROOT / "var")),
    int(os.environ.get("CALSERV_PG_PORT", "5433")),
)
_TEST_DB = f"calserv_test_{os.getpid()}"
os.environ.update(
    CALSERV_DATABASE_URL=_BASE_DB_URL.rsplit("/", 1)[0] + "/" + _TEST_DB,
    CALSERV_QUEUE=f"calserv-test-{os.getpid()}",
    CALSERV_REDIS_URL=os.environ.get("CALSERV_REDIS_URL")
    or local_redis_url(
        Path(os.environ.get("CALSERV_VAR_DIR", ROOT / "var")),
        int(os.environ.get("CALSERV_REDIS_PORT", "6380")),
        db=1,
    ),
    CALSERV_STORAGE_URL=str(TMP / "store"),
    CALSERV_REFCAT_DIR=str(TMP / "refcats"),
    CALSERV_SECRET_KEY=os.environ.get("CALSERV_SECRET_KEY", "test-secret"),
    CALSERV_HASHTAG_PEPPER=os.environ.get("CALSERV_HASHTAG_PEPPER", "test-pepper"),
    CALSERV_RATE_LIMIT=os.environ.get("CALSERV_RATE_LIMIT", "100000 per minute"),
)


@pytest.fixture(scope="session")
def database():
    """A new database migrated with the real Alembic migrations (not create_all), dropped after."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from db.session import engine

    admin = create_engine(_BASE_DB_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {_TEST_DB} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {_TEST_DB}"))
    command.upgrade(Config(str(ROOT / "alembic.ini")), "head")
    yield os.environ["CALSERV_DATABASE_URL"]
    engine().dispose()
    engine(autocommit=True).dispose()
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {_TEST_DB} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_client():
    import redis

    r = redis.Redis.from_url(os.environ["CALSERV_REDIS_URL"])
    r.ping()
    return r


@pytest.fixture(scope="session")
def refstore(tmp_path_factory) -> Path:
    """The reference store of the test run: the real Gaia demo plus the synth-deep survey."""
    from refcats.gaia_demo import build_gaia_demo
    from refcats.ingest import ingest

    root = Path(os.environ["CALSERV_REFCAT_DIR"])
    root.mkdir(parents=True, exist_ok=True)
    build_gaia_demo(root)
    ingest(root, "SYNTH", DATA / "synth-deep" / "ref.csv", ["B", "V", "R", "I"])
    return root


@pytest.fixture(scope="session")
def worker(database, redis_client, refstore):
    """A real `celery worker` process consuming the test queue."""
    w = WorkerProcess("test")
    yield w
    w.stop()


@pytest.fixture(scope="session")
def app(database):
    from web import create_app

    return create_app(overrides={"TESTING": True, "WTF_CSRF_ENABLED": False})


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(scope="session")
def observatory(app) -> dict:
    """A registered observatory, made through the CLI as an operator would: its name and hashtag."""
    name = f"Test Observatory {secrets.token_hex(3)}"
    result = app.test_cli_runner().invoke(
        args=["observatory", "add", name, "--lon", "20.5", "--lat", "-32.4", "--filters", "R,V,G"]
    )
    assert result.exit_code == 0, result.output
    return {"name": name, "hashtag": result.output.strip().splitlines()[-1]}


@pytest.fixture()
def start_gunicorn(database):
    """Start more web tiers (`Gunicorn` arguments); each is stopped after the test."""
    started: list[Gunicorn] = []

    def start(**kwargs) -> Gunicorn:
        started.append(Gunicorn(**kwargs))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def live_server(database, worker):
    """The real web tier under gunicorn, as `make run` serves it."""
    server = Gunicorn()
    yield server.url
    server.stop()
