"""calserv configuration: every setting comes from an environment variable with a local default.

One module, read by the web tier, the workers and the CLI alike, so that `make run`, `make test`
and a production unit file differ only in their environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _env(name: str, default: str) -> str:
    return os.environ.get(f"CALSERV_{name}", os.environ.get(name, default))


def _var(sub: str) -> str:
    return str(Path(_env("VAR_DIR", str(ROOT / "var"))) / sub)


@dataclass(frozen=True)
class Settings:
    """A snapshot of the environment; build a new one (``Settings()``) to re-read it."""

    var_dir: Path = field(default_factory=lambda: Path(_env("VAR_DIR", str(ROOT / "var"))))
    database_url: str = field(
        default_factory=lambda: _env(
            "DATABASE_URL",
            f"postgresql+psycopg2://calserv@127.0.0.1:{_env('PG_PORT', '5433')}/calserv",
        )
    )
    redis_url: str = field(
        default_factory=lambda: _env(
            "REDIS_URL", f"redis://127.0.0.1:{_env('REDIS_PORT', '6380')}/0"
        )
    )
    queue: str = field(default_factory=lambda: _env("QUEUE", "calserv"))
    refcat_dir: Path = field(default_factory=lambda: Path(_env("REFCAT_DIR", _var("refcats"))))
    upload_dir: Path = field(default_factory=lambda: Path(_env("UPLOAD_DIR", _var("uploads"))))
    plot_dir: Path = field(default_factory=lambda: Path(_env("PLOT_DIR", _var("plots"))))
    secret_key: str = field(default_factory=lambda: _env("SECRET_KEY", "dev-only-secret-change-me"))
    hashtag_pepper: str = field(
        default_factory=lambda: _env("HASHTAG_PEPPER", "dev-only-pepper-change-me")
    )
    max_upload_bytes: int = field(
        default_factory=lambda: int(_env("MAX_UPLOAD_BYTES", str(50 * 1024 * 1024)))
    )
    refcat_cache_bytes: int = field(
        default_factory=lambda: int(_env("REFCAT_CACHE_BYTES", str(512 * 1024 * 1024)))
    )
    task_soft_time_limit: int = field(
        default_factory=lambda: int(_env("TASK_SOFT_TIME_LIMIT", "120"))
    )
    task_time_limit: int = field(default_factory=lambda: int(_env("TASK_TIME_LIMIT", "180")))
    visibility_timeout: int = field(default_factory=lambda: int(_env("VISIBILITY_TIMEOUT", "300")))
    sweep_interval: int = field(default_factory=lambda: int(_env("SWEEP_INTERVAL", "30")))
    stale_job_seconds: int = field(default_factory=lambda: int(_env("STALE_JOB_SECONDS", "600")))
    worker_max_memory_kb: int = field(
        default_factory=lambda: int(_env("WORKER_MAX_MEMORY_KB", str(1024 * 1024)))
    )
    rate_limit: str = field(default_factory=lambda: _env("RATE_LIMIT", "1200 per minute"))
    session_cookie_secure: bool = field(
        default_factory=lambda: _env("SESSION_COOKIE_SECURE", "0") == "1"
    )


def settings() -> Settings:
    """The current settings, read from the environment now."""
    return Settings()
