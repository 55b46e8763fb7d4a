"""The calserv web tier; `flask --app web` and `gunicorn "web:create_app()"` build it here."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import bokeh
from flask import Flask

from blobstore import open_store
from config import Settings
from config import settings as _process_settings
from web.version import VERSION


def create_app(
    settings: Settings | None = None, overrides: Mapping[str, Any] | None = None
) -> Flask:
    """Build the app from `settings` (default: the process's, read from the environment once),
    then Flask config `overrides` (tests)."""
    if settings is not None and not isinstance(settings, Settings):
        raise TypeError("create_app(settings, overrides): pass Flask config as overrides=")
    from web import (
        alert_pages,
        alert_registry,
        assets,
        cli,
        csrf,
        errors,
        followups,
        job_list_page,
        job_status,
        jobs,
        login,
        metrics,
        openapi,
        ops,
        redact,
        request_session,
        submit_page,
        upload_api,
    )

    s = settings if settings is not None else _process_settings()
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=s.secret_key,
        MAX_CONTENT_LENGTH=s.max_upload_bytes,
        MAX_FORM_MEMORY_SIZE=1024 * 1024,
        MAX_FORM_PARTS=200,
        RATE_LIMIT=s.rate_limit,
        MAX_WAITERS=s.max_waiters,
        # Buckets are named by observatory id: one namespace per deployment (its queue's name),
        # so two instances sharing a Redis (e.g. test runs) never share a bucket.
        RATELIMIT_KEY_PREFIX=s.queue,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=s.session_cookie_secure,
        DATABASE_URL=s.database_url,
        REDIS_URL=s.redis_url,
        HASHTAG_PEPPER=s.hashtag_pepper,
        REFCAT_DIR=str(s.refcat_dir),
        STALE_JOB_SECONDS=s.stale_job_seconds,
        # A form left open all night must still post: the token lives as long as the session.
        WTF_CSRF_TIME_LIMIT=None,
    )
    if overrides:
        app.config.update(overrides)
    # Uploads written, plots and cutouts served: `current_app.extensions["blobstore"]`.
    app.extensions["blobstore"] = open_store(s.storage_url, s.storage_endpoint_url)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    redact.install()  # a key sent in a URL must never reach a log line
    request_session.init_app(app)
    app.jinja_env.globals["calserv_version"] = VERSION
    app.jinja_env.globals["bokeh_version"] = bokeh.__version__
    errors.register(app)
    assets.init_app(app)
    # Before the other hooks: its request timer covers them too.
    metrics.init_app(app, s.database_url, s.redis_url, s.queue)
    csrf.init_app(app)
    ops.init_app(app)
    cli.register(app)
    blueprints = (
        upload_api,
        jobs,
        job_list_page,
        job_status,
        alert_registry,
        submit_page,
        login,
        alert_pages,
        followups,
        openapi,
    )
    for module in blueprints:
        app.register_blueprint(module.bp)
    return app
