"""calserv configuration: one typed :class:`Settings` object, read from the environment once.

Every setting is an environment variable `CALSERV_<NAME>` (the bare `<NAME>` is accepted too), with
a local default, so `make run`, `make test` and a production unit differ only in their environment.
Processes load it once (:func:`settings`) and hand it on: `create_app(settings)`, `celeryconfig`.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from blobstore import parse_url

ROOT = Path(__file__).resolve().parent
PREFIX = "CALSERV_"
DEV_SECRET_KEY = "dev-only-secret-change-me"
DEV_HASHTAG_PEPPER = "dev-only-pepper-change-me"


def _env(name: str, default: Any = None, **kw: Any) -> Any:
    """A setting read from `CALSERV_<NAME>` or `<NAME>`."""
    alias = AliasChoices(PREFIX + name, name)
    if "default_factory" in kw:
        return Field(validation_alias=alias, **kw)
    return Field(default, validation_alias=alias, **kw)


def _local_secret(data: dict, name: str, dev_default: str) -> str:
    """The secret `deploy/services.sh` generated into `VAR_DIR/<name>` on this machine, else the
    development default (which production refuses): a new shell after `make run` needs nothing
    exported to reach the same instance."""
    path = Path(data.get("var_dir", ROOT / "var")) / name
    try:
        return path.read_text().strip() or dev_default
    except OSError:
        return dev_default


def local_database_url(name: str, var_dir: Path, pg_port: int) -> str:
    """The URL of database `name` on the local PostgreSQL of deploy/services.sh, with the
    password it generated (`<var_dir>/pg-password`), or without one when there is no such file."""
    password_file = Path(var_dir) / "pg-password"
    password = password_file.read_text().strip() if password_file.exists() else ""
    login = f"calserv:{password}" if password else "calserv"
    return f"postgresql+psycopg2://{login}@127.0.0.1:{pg_port}/{name}"


def local_redis_url(var_dir: Path, redis_port: int, db: int = 0) -> str:
    """The URL of database `db` on the local Redis of deploy/services.sh, with the password it
    generated (`<var_dir>/redis-password`), or without one when there is no such file."""
    password_file = Path(var_dir) / "redis-password"
    password = password_file.read_text().strip() if password_file.exists() else ""
    login = f":{password}@" if password else ""
    return f"redis://{login}127.0.0.1:{redis_port}/{db}"


class ConfigError(ValueError):
    """A setting has a value calserv cannot use; the message names its variable, on one line."""


class Settings(BaseSettings):
    """Every setting of calserv; `Settings(queue="x")` builds one for a test without the env."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", validate_by_name=True)

    #: `development` accepts the built-in secret key and pepper; `production` refuses them
    #: where they are used (:meth:`check_web_secrets`).
    env: Literal["production", "development"] = Field(
        "production", validation_alias=AliasChoices(PREFIX + "ENV")
    )
    var_dir: Path = _env("VAR_DIR", ROOT / "var")
    pg_port: int = _env("PG_PORT", 5433)
    redis_port: int = _env("REDIS_PORT", 6380)
    database_url: str = _env(
        "DATABASE_URL",
        default_factory=lambda d: local_database_url(
            "calserv", d.get("var_dir", ROOT / "var"), d.get("pg_port", 5433)
        ),
    )
    redis_url: str = _env(
        "REDIS_URL",
        default_factory=lambda d: local_redis_url(
            d.get("var_dir", ROOT / "var"), d.get("redis_port", 6380)
        ),
    )
    queue: str = _env("QUEUE", "calserv")
    refcat_dir: Path = _env("REFCAT_DIR", default_factory=lambda d: _var(d, "refcats"))
    #: Where uploads, plots and cutouts live (`blobstore`): a local directory (default: VAR_DIR)
    #: or `s3://bucket/prefix`, shared by the web and worker hosts.
    storage_url: str = _env(
        "STORAGE_URL", default_factory=lambda d: str(d.get("var_dir", ROOT / "var"))
    )
    #: The S3-compatible server of an `s3://` store when it is not AWS (else `AWS_ENDPOINT_URL`).
    storage_endpoint_url: str | None = _env("STORAGE_ENDPOINT_URL")
    #: Default: the local secret `make run` generated (VAR_DIR/secret-key), else a development one.
    secret_key: str = _env(
        "SECRET_KEY", default_factory=lambda d: _local_secret(d, "secret-key", DEV_SECRET_KEY)
    )
    hashtag_pepper: str = _env(
        "HASHTAG_PEPPER",
        default_factory=lambda d: _local_secret(d, "hashtag-pepper", DEV_HASHTAG_PEPPER),
    )
    max_upload_bytes: int = _env("MAX_UPLOAD_BYTES", 50 * 1024 * 1024, gt=0)
    refcat_cache_bytes: int = _env("REFCAT_CACHE_BYTES", 512 * 1024 * 1024, ge=0)
    #: remote reference surveys: where their partition files are cached, and the byte budget
    refcat_disk_cache_dir: Path = _env(
        "REFCAT_DISK_CACHE_DIR", default_factory=lambda d: Path(d["refcat_dir"]) / ".cache"
    )
    refcat_disk_cache_bytes: int = _env("REFCAT_DISK_CACHE_BYTES", 20 * 1024**3, ge=0)
    task_soft_time_limit: int = _env("TASK_SOFT_TIME_LIMIT", 120, gt=0)
    task_time_limit: int = _env("TASK_TIME_LIMIT", 180, gt=0)
    visibility_timeout: int = _env("VISIBILITY_TIMEOUT", 300, gt=0)
    #: The sweeper (`workers.sweeper`) looks for jobs to re-send this often.
    sweep_interval: int = _env("SWEEP_INTERVAL", 10, gt=0)
    #: A worker stamps the job it runs this often; a running job whose stamp is older than
    #: STALE_JOB_SECONDS has lost its worker and is re-sent (within about 40 s by default).
    heartbeat_seconds: int = _env("HEARTBEAT_SECONDS", 10, gt=0)
    stale_job_seconds: int = _env("STALE_JOB_SECONDS", 30, gt=0)
    worker_max_memory_kb: int = _env("WORKER_MAX_MEMORY_KB", 1024 * 1024, gt=0)
    #: A worker's cold shutdown (SIGQUIT) lets running jobs go on this long, then gives them back
    #: to the queue; `make run` stops its worker so with 0 (Ctrl-C ends in seconds).
    worker_soft_shutdown_seconds: float = _env("WORKER_SOFT_SHUTDOWN_SECONDS", 60.0, ge=0)
    #: Requests each web process may hold waiting for job ends (`wait=`); beyond, they are
    #: answered at once. Keep it below gunicorn's threads per process, so one stays free.
    max_waiters: int = _env("MAX_WAITERS", 1, ge=0)
    #: Address space a job may add while it runs (RLIMIT_AS in the worker child); 0: no limit.
    job_memory_mb: int = _env("JOB_MEMORY_MB", 1024, ge=0)
    #: Frames whose sources spread farther than this from their centre are refused.
    max_frame_radius_deg: float = _env("MAX_FRAME_RADIUS_DEG", 5.0, gt=0, le=180)
    rate_limit: str = _env("RATE_LIMIT", "1200 per minute")
    #: Alert lists kept in sync by Celery beat (`feeds.sync`): http(s) URLs of a Gaia Science
    #: Alerts `alerts.csv` or a TNS CSV export, separated by spaces; empty: no sync.
    alert_feed_url: str = _env("ALERT_FEED_URL", "")
    alert_feed_interval: int = _env("ALERT_FEED_INTERVAL", 900, gt=0)
    #: Seconds a feed may take to answer and arrive, in all.
    alert_feed_timeout: float = _env("ALERT_FEED_TIMEOUT", 60.0, gt=0)
    session_cookie_secure: bool = _env("SESSION_COOKIE_SECURE", False)
    #: The web tier is reached only through one reverse proxy (nginx: `make run`'s front end, or
    #: the production site), which sets X-Forwarded-For/-Proto: the client's address (rate limits,
    #: logs) is read from there. Never set it where clients reach gunicorn directly.
    behind_proxy: bool = _env("BEHIND_PROXY", False)

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, url: str) -> str:
        parse_url(url)
        return url

    @field_validator("alert_feed_url")
    @classmethod
    def _feed_urls(cls, value: str) -> str:
        for url in value.split():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url[:80]!r} is not an http(s) URL")
        return value

    @property
    def alert_feed_urls(self) -> list[str]:
        return self.alert_feed_url.split()

    @model_validator(mode="after")
    def _heartbeat_within_stale(self) -> Settings:
        if self.heartbeat_seconds * 2 > self.stale_job_seconds:
            raise ValueError(
                f"{PREFIX}STALE_JOB_SECONDS={self.stale_job_seconds} must be at least twice "
                f"{PREFIX}HEARTBEAT_SECONDS={self.heartbeat_seconds}: one late heartbeat would "
                "otherwise make a live job look abandoned"
            )
        return self

    def check_web_secrets(self) -> None:
        """Refuse (ConfigError) the development defaults of the web tier's own secrets, the
        session key and the hashtag pepper, in production. Only the web tier and its CLI read
        them (`web.create_app` checks): workers, the sweeper and Flower run without them."""
        if self.env == "development":
            return
        for name, value, dev in (
            ("SECRET_KEY", self.secret_key, DEV_SECRET_KEY),
            ("HASHTAG_PEPPER", self.hashtag_pepper, DEV_HASHTAG_PEPPER),
        ):
            if value == dev:
                raise ConfigError(
                    f"invalid configuration: {PREFIX}{name} is the development default: set a "
                    f"long random value (or {PREFIX}ENV=development on a developer's machine)"
                )

    @classmethod
    def load(cls, **values: Any) -> Settings:
        """The environment's settings (`values` take precedence); ConfigError when one is bad."""
        for old in ("UPLOAD_DIR", "PLOT_DIR"):
            if PREFIX + old in os.environ:
                raise ConfigError(
                    f"{PREFIX}{old} is gone: uploads and plots live in {PREFIX}STORAGE_URL "
                    f"(its uploads/ and plots/); move the files there and unset {PREFIX}{old}"
                )
        try:
            return cls(**values)
        except ValidationError as e:
            raise ConfigError(_one_line(e)) from None


def _var(data: dict, sub: str) -> Path:
    return Path(data.get("var_dir", ROOT / "var")) / sub


def _one_line(e: ValidationError) -> str:
    """`CALSERV_MAX_UPLOAD_BYTES='50MB': Input should be a valid integer...`, one per bad value."""
    parts = []
    for err in e.errors(include_url=False):
        loc = str(err["loc"][0]) if err["loc"] else ""
        name = loc.upper() if loc.upper().startswith(PREFIX) else PREFIX + loc.upper()
        got = f"={err['input']!r}" if loc and not isinstance(err["input"], dict) else ""
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{name}{got}: {msg}" if loc else msg)
    return "invalid configuration: " + "; ".join(parts)


@cache
def settings() -> Settings:
    """The process's settings, read from the environment on first use; a bad value ends the
    process with a one-line message naming the variable (not a traceback)."""
    try:
        return Settings.load()
    except ConfigError as e:
        raise SystemExit(f"calserv: {e}") from None
