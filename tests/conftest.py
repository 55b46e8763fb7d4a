"""Fixtures for tests against the real services: PostgreSQL, Redis and a Celery worker process.

`make test` starts PostgreSQL and Redis; this file points calserv at a test database and a test
Redis database, recreates the schema with the Alembic migrations, builds the reference store,
and runs a real `celery worker` subprocess for the end-to-end tests.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
_TMP = Path(os.environ.get("CALSERV_TEST_VAR", f"/tmp/calserv-test-{os.getpid()}"))

# Each test session gets its own database and queue, so concurrent runs never meet.
_BASE_DB_URL = os.environ.get(
    "CALSERV_DATABASE_URL", "postgresql+psycopg2://calserv@127.0.0.1:5433/calserv_test"
)
_TEST_DB = f"calserv_test_{os.getpid()}"
os.environ["CALSERV_DATABASE_URL"] = _BASE_DB_URL.rsplit("/", 1)[0] + "/" + _TEST_DB
os.environ["CALSERV_QUEUE"] = f"calserv-test-{os.getpid()}"
os.environ.setdefault("CALSERV_REDIS_URL", "redis://127.0.0.1:6380/1")
os.environ["CALSERV_UPLOAD_DIR"] = str(_TMP / "uploads")
os.environ["CALSERV_PLOT_DIR"] = str(_TMP / "plots")
os.environ["CALSERV_REFCAT_DIR"] = str(_TMP / "refcats")
os.environ.setdefault("CALSERV_SECRET_KEY", "test-secret")
os.environ.setdefault("CALSERV_HASHTAG_PEPPER", "test-pepper")
os.environ.setdefault("CALSERV_RATE_LIMIT", "100000 per minute")


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


class WorkerProcess:
    """A real `celery worker` subprocess (its own process group, so it can be SIGKILLed whole)."""

    def __init__(self, name: str, env: dict[str, str] | None = None, concurrency: int = 1):
        self.name, self.env, self.concurrency = name, env or {}, concurrency
        self.log = _TMP / f"worker-{name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.start()

    def start(self) -> None:
        seen = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.celery_app",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={self.concurrency}",
                "--without-gossip",
                "--without-mingle",
                f"--hostname={self.name}-{secrets.token_hex(3)}@%h",
            ],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while b"ready." not in self.log.read_bytes()[seen:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("celery worker did not start:\n" + self.log.read_text()[-3000:])
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and children), as an OOM killer would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


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


def add_alert(app, ivorn: str, name: str, ra: float, dec: float) -> None:
    result = app.test_cli_runner().invoke(
        args=["alert", "add", ivorn, "--name", name, "--ra", str(ra), "--dec", str(dec)]
    )
    assert result.exit_code == 0, result.output


def wait_job(client, job_id: str, timeout: float = 60) -> dict:
    """Poll the job-status URL as a client script would, until the job ends."""
    deadline = time.monotonic() + timeout
    while True:
        data = client.get(f"/jobs/{job_id}?outputFormat=json").get_json()
        if data["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return data
        time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(database, worker):
    """The real web tier under gunicorn, as `make run` serves it."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "web:create_app()",
        ],
        cwd=ROOT,
        stdout=(_TMP / "gunicorn.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:  # ready when the app itself answers, not just the listening socket
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not start: " + (_TMP / "gunicorn.log").read_text())
        time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=20)
