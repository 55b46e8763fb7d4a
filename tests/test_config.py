"""Settings: typed, read once, a bad value is one line naming its variable, no dev secrets in
production. Subprocesses run the real entry points with a controlled environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import DEV_SECRET_KEY, ConfigError, Settings
from tests.helpers import TMP

ROOT = Path(__file__).resolve().parents[1]


#: A VAR_DIR with no generated secrets: the built-in development ones are the defaults there.
NO_SECRETS_VAR = TMP / "bare-var"


def clean_env(**values: str) -> dict[str, str]:
    """The environment without any calserv setting (VAR_DIR: one without secrets), plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSERV_")}
    return {**env, "CALSERV_VAR_DIR": str(NO_SECRETS_VAR), **values}


def run(code: str, **values: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean_env(**values),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_bad_value_stops_create_app_with_one_line_naming_the_variable():
    proc = run(
        "import web; web.create_app()",
        CALSERV_ENV="development",
        CALSERV_MAX_UPLOAD_BYTES="50MB",
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "CALSERV_MAX_UPLOAD_BYTES='50MB'" in lines[0] and "integer" in lines[0]


def test_the_flask_cli_reports_a_bad_value_the_same_way():
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "web", "jobs", "--help"],
        cwd=ROOT,
        env=clean_env(CALSERV_ENV="development", CALSERV_TASK_TIME_LIMIT="-5"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "calserv: invalid configuration: CALSERV_TASK_TIME_LIMIT='-5': "
        "Input should be greater than 0"
    ]


@pytest.mark.parametrize("variable", ["CALSERV_SECRET_KEY", "CALSERV_HASHTAG_PEPPER"])
def test_production_refuses_the_development_secrets(variable):
    other = "CALSERV_HASHTAG_PEPPER" if variable == "CALSERV_SECRET_KEY" else "CALSERV_SECRET_KEY"
    proc = run("import web; web.create_app()", **{other: "a-real-long-random-value"})
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"calserv: invalid configuration: {variable} is the development")


def test_development_mode_accepts_the_built_in_secrets():
    proc = run(
        "import web; app = web.create_app(); print(app.config['SECRET_KEY'])",
        CALSERV_ENV="development",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == DEV_SECRET_KEY


def test_secrets_generated_into_the_var_dir_are_the_defaults(tmp_path):
    """`make run` writes this machine's secrets into VAR_DIR; a new shell's CLI and the app read
    them without anything exported, in production mode."""
    subprocess.run(
        ["deploy/services.sh", "secrets"],
        cwd=ROOT,
        env=clean_env(CALSERV_VAR_DIR=str(tmp_path)),
        check=True,
    )
    assert (tmp_path / "secret-key").stat().st_mode & 0o077 == 0
    proc = run(
        "import web; app = web.create_app(); from config import settings;"
        "print(app.config['SECRET_KEY'], settings().hashtag_pepper, settings().env)",
        CALSERV_VAR_DIR=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    key, pepper, env = proc.stdout.split()
    assert key == (tmp_path / "secret-key").read_text() and len(key) == 64
    assert pepper == (tmp_path / "hashtag-pepper").read_text() and pepper != key
    assert env == "production"


def test_the_celery_config_is_built_from_the_settings(tmp_path):
    (tmp_path / "redis-password").write_text("s3cret\n")  # as deploy/services.sh makes it
    proc = run(
        "import celeryconfig as c; print(c.task_default_queue, c.task_time_limit, c.broker_url)",
        CALSERV_ENV="development",
        CALSERV_QUEUE="q-test",
        TASK_TIME_LIMIT="77",  # the bare name works too
        CALSERV_REDIS_PORT="6999",
        CALSERV_VAR_DIR=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["q-test", "77", "redis://:s3cret@127.0.0.1:6999/0"]


def test_defaults_follow_the_var_dir_and_ports(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("CALSERV_"):
            monkeypatch.delenv(name)
    s = Settings.load(env="development", var_dir=tmp_path, pg_port=5999)
    assert s.storage_url == str(tmp_path) and s.refcat_dir == tmp_path / "refcats"
    assert s.database_url == "postgresql+psycopg2://calserv@127.0.0.1:5999/calserv"
    assert s.redis_url == "redis://127.0.0.1:6380/0"  # no redis-password file: no password
    assert s.max_upload_bytes == 50 * 1024 * 1024 and s.task_soft_time_limit == 120


def test_load_names_every_bad_value():
    with pytest.raises(ConfigError) as e:
        Settings.load(env="development", sweep_interval="soon", rate_limit=None)
    assert "CALSERV_SWEEP_INTERVAL='soon'" in str(e.value)
    assert "CALSERV_RATE_LIMIT" in str(e.value)


def test_create_app_takes_its_settings_object(tmp_path):
    from web import create_app

    s = Settings.load(env="development", max_upload_bytes=1234, storage_url=str(tmp_path))
    app = create_app(s, overrides={"TESTING": True})
    assert app.config["MAX_CONTENT_LENGTH"] == 1234
    assert app.extensions["blobstore"].url == str(tmp_path)
    with pytest.raises(TypeError, match="overrides="):
        create_app({"TESTING": True})


@pytest.mark.parametrize(
    "url", ["relative/dir", "ftp://host/x", "s3://", "s3://key:secret@bucket/x", "file://host/x"]
)
def test_storage_url_must_name_a_directory_or_a_bucket(url):
    with pytest.raises(ConfigError, match="CALSERV_STORAGE_URL"):
        Settings.load(env="development", storage_url=url)


def test_old_upload_and_plot_dirs_are_refused_not_ignored(monkeypatch):
    monkeypatch.setenv("CALSERV_UPLOAD_DIR", "/mnt/nfs/uploads")
    with pytest.raises(ConfigError, match=r"CALSERV_UPLOAD_DIR is gone.*CALSERV_STORAGE_URL"):
        Settings.load(env="development")


def test_a_heartbeat_must_fit_twice_in_the_stale_time():
    """One late heartbeat must not make a live job look abandoned (and run it twice)."""
    assert Settings.load(env="development").stale_job_seconds == 30
    with pytest.raises(ConfigError) as e:
        Settings.load(env="development", heartbeat_seconds=20, stale_job_seconds=30)
    assert "CALSERV_STALE_JOB_SECONDS=30" in str(e.value)


def test_processes_other_than_the_web_tier_run_without_its_secrets(tmp_path):
    """Workers, the sweeper and Flower never read the session key or the hashtag pepper, so
    production gives them neither (their units read no web secrets)."""
    proc = run(
        "import celeryconfig, workers.sweeper; print(celeryconfig.broker_url)",
        CALSERV_VAR_DIR=str(tmp_path),  # production, and no secret anywhere
        CALSERV_REDIS_URL="redis://:pw@10.0.0.2:6379/0",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "redis://:pw@10.0.0.2:6379/0"
    web = run("import web; web.create_app()", CALSERV_VAR_DIR=str(tmp_path))
    assert web.returncode == 1 and "CALSERV_SECRET_KEY is the development" in web.stderr


@pytest.mark.parametrize("behind_proxy", [True, False])
def test_behind_the_proxy_the_client_address_is_the_forwarded_one(tmp_path, behind_proxy):
    """nginx in front (`make run`, production) says who the client is: rate limits per address
    must count that client, not nginx; without the setting the header is never trusted."""
    from flask import request

    from web import create_app

    s = Settings.load(env="development", storage_url=str(tmp_path), behind_proxy=behind_proxy)
    app = create_app(s, overrides={"TESTING": True})
    app.add_url_rule("/_peer", "peer", lambda: request.remote_addr or "")
    resp = app.test_client().get(
        "/_peer",
        headers={"X-Forwarded-For": "203.0.113.9"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert resp.get_data(as_text=True) == ("203.0.113.9" if behind_proxy else "127.0.0.1")
