"""The calserv web tier; `flask --app web` and `gunicorn "web:create_app()"` build it here."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib import import_module
from typing import Any

import bokeh
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from blobstore import open_store
from config import ConfigError, Settings
from config import settings as _process_settings
from web.version import VERSION

#: What requests load on first use, so that building the app (for the CLI, a script or a test)
#: stays light: the light-curve plots (matplotlib, Bokeh), the alert pages' sexagesimal
#: positions (astropy) and the upload's header checks (numpy).
ON_FIRST_USE = (
    "matplotlib.figure",
    "matplotlib.lines",
    "web.lightcurve_bokeh",
    "web.lightcurve_png",
    "web.finder_chart",
    "web.instrument_bokeh",
    "calib.intercalibration",
    "astropy.coordinates",
    "calib.catalog",
    "calib.image",
)


def warm_up() -> None:
    """Import :data:`ON_FIRST_USE` now: a server process does so before it serves (gunicorn's
    `post_worker_init`), so that no request waits for a second of imports holding the GIL that
    the process's other requests need, and the imported objects can be frozen out of the garbage
    collector's reach."""
    for name in ON_FIRST_USE:
        import_module(name)


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
        contract,
        csrf,
        errors,
        followups,
        job_list_page,
        job_status,
        jobs,
        login,
        metrics,
        negotiation,
        observatory_pages,
        openapi,
        ops,
        redact,
        request_session,
        submit_page,
        survey_status,
        upload_api,
    )

    s = settings if settings is not None else _process_settings()
    try:
        s.check_web_secrets()
    except ConfigError as e:
        raise SystemExit(f"calserv: {e}") from None
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
        HEARTBEAT_SECONDS=s.heartbeat_seconds,
        SWEEP_INTERVAL=s.sweep_interval,
        # A form left open all night must still post: the token lives as long as the session.
        WTF_CSRF_TIME_LIMIT=None,
    )
    if overrides:
        app.config.update(overrides)
    if s.behind_proxy:  # the client's address and scheme, as the one proxy in front saw them
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)
    # Uploads written, plots and cutouts served: `current_app.extensions["blobstore"]`.
    app.extensions["blobstore"] = open_store(s.storage_url, s.storage_endpoint_url)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    redact.install()  # a key sent in a URL must never reach a log line
    request_session.init_app(app)
    app.jinja_env.globals["calserv_version"] = VERSION
    app.jinja_env.globals["bokeh_version"] = bokeh.__version__
    app.jinja_env.globals["downloads"] = negotiation.DOWNLOADS  # the `download_links` macro's
    app.url_map.converters["job_id"] = jobs.JobIdConverter
    errors.register(app)
    assets.init_app(app)
    # Before the other hooks: its request timer covers them too.
    metrics.init_app(app, s.database_url, s.redis_url, s.queue)
    csrf.init_app(app)
    ops.init_app(app)
    survey_status.init_app(app, s.refcat_disk_cache_dir, s.refcat_disk_cache_bytes)
    contract.init_app(app)  # after the NUL and control-character checks, before the views
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
        observatory_pages,
        openapi,
    )
    for module in blueprints:
        app.register_blueprint(module.bp)
    return app
