"""Operational plumbing of the web tier: rate limits, `/healthz`, security headers, NUL refusal,
reading small request bodies at once."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Flask, current_app, jsonify, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from redis import Redis
from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from db.session import engine, session_scope
from feeds.sync import feed_warnings
from web.auth import SESSION_KEY, hashtag_owner, session_observatory
from web.errors import ApiError
from web.hygiene import has_control, header_has_control
from web.request_body import read_small_body
from web.request_session import db
from web.survey_status import survey_states


def rate_key() -> str:
    """Limit per authenticated observatory, else per client address.

    Only a valid key (or a logged-in session) earns its observatory's bucket: a request with a
    wrong key, even one sharing a real key's public prefix, counts against its sender's address,
    so nobody can exhaust another observatory's limit.
    """
    try:
        obs = hashtag_owner(db())
    except HTTPException:  # an unreadable body: the address; the view will refuse it
        obs = None
    if obs is not None:
        return f"obs:{obs.id}"
    if session.get(SESSION_KEY):
        obs = session_observatory(db())
        if obs is not None:
            return f"obs:{obs.id}"
    return f"ip:{get_remote_address()}"


limiter = Limiter(key_func=rate_key)
#: The per-key limit (`RATE_LIMIT`) of the endpoints that write (uploads, new alerts, login
#: attempts); reads such as job polls are not limited, so a batch client may poll as it needs.
rate_limited = limiter.limit(lambda: current_app.config["RATE_LIMIT"])
bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """200 when Postgres and Redis answer, 503 (naming the failing one) otherwise; `surveys`
    gives each reference survey's state, which never fails the probe (web.survey_status);
    `warnings` names what an operator should look at that does not stop calibrations (an alert
    feed that cannot be read)."""
    checks = {}
    try:
        with engine(current_app.config["DATABASE_URL"]).connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception as e:
        checks["postgres"] = f"down: {type(e).__name__}"
    try:
        Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=2).ping()
        checks["redis"] = "ok"
    except Exception as e:
        checks["redis"] = f"down: {type(e).__name__}"
    ok = all(v == "ok" for v in checks.values())
    surveys = survey_states()
    fine = ok and all(v == "ok" for v in surveys.values())
    warnings = []
    if checks["postgres"] == "ok":  # what needs an operator but does not stop calibrations
        with session_scope(current_app.config["DATABASE_URL"]) as s:
            warnings = feed_warnings(s)
    resp = jsonify(
        status="ok" if fine else "degraded",
        **checks,
        surveys=surveys,
        warnings=warnings,
    )
    resp.status_code = 200 if ok else 503
    if not ok:
        resp.headers["Retry-After"] = "5"
    return resp


_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'{styles}; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: The alert page only: BokehJS styles its plot with <style> elements it makes at run time.
#: Scripts stay 'self' only, so injected markup still cannot run.
CSP_FOR_BOKEH = _CSP.format(styles=" 'unsafe-inline'")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # No inline script or style: all of it is in /static, so an injected tag cannot run.
    "Content-Security-Policy": _CSP.format(styles=""),
}


def refuse_nul_bytes() -> None:
    """400 for a NUL character in any field value (every value of a repeated one) or file name:
    PostgreSQL text cannot store one, and no valid key, IVORN, name or comment contains one (it
    would otherwise surface as a 500). Field names are not checked (a field calserv does not
    take is ignored), and a request no route takes (404, or 405 for TRACE) gets that answer."""
    if request.routing_exception is not None:
        return
    try:
        values = [
            *(v for _, vs in request.values.lists() for v in vs),
            *(f.filename or "" for _, fs in request.files.lists() for f in fs),
        ]
    except HTTPException:  # an unreadable body (e.g. too large) is refused by the view itself
        return
    if any("\x00" in v for v in values):
        raise ApiError(400, "malformed request", "a field contains a NUL character")


#: The longest URL (path and query, as sent) and header value the app takes. gunicorn's own
#: limits (deploy/gunicorn.conf.py) sit above these, so a longer one is refused here, in JSON
#: like every other error, and not by gunicorn's HTML page.
MAX_URL_BYTES = 8000
MAX_HEADER_BYTES = 8190
MAX_HEADERS = 100


def refuse_oversized_head() -> None:
    """414 for a URL over MAX_URL_BYTES, 431 for too many or too large header fields."""
    env = request.environ
    raw = env.get("RAW_URI") or env.get("REQUEST_URI")
    url_bytes = len(raw) if raw else len(quote(request.path)) + 1 + len(request.query_string)
    if url_bytes > MAX_URL_BYTES:
        raise ApiError(
            414,
            f"URL too long ({url_bytes} bytes)",
            f"a URL holds at most {MAX_URL_BYTES} bytes: send long values (comment, ...) as "
            "form fields in the body",
        )
    headers = list(request.headers.items())
    if len(headers) > MAX_HEADERS:
        raise ApiError(431, "too many header fields", f"send at most {MAX_HEADERS}")
    for name, value in headers:
        if len(name) + len(value) > MAX_HEADER_BYTES:
            limit = f"a header holds at most {MAX_HEADER_BYTES} bytes"
            raise ApiError(431, f"header {name[:40]} too large", limit)


def refuse_control_characters() -> None:
    """400 for a control character in the path (`/jobs/%00`) or in a header value: no page is
    named so, and such a value would reach a query or a response header as-is."""
    if has_control(request.path):
        raise ApiError(400, "malformed path", "the path contains a control character")
    if any(header_has_control(v) for _, v in request.headers.items()):
        raise ApiError(400, "malformed header", "a header contains a control character")


def init_app(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    # Redis down must not refuse uploads: they are stored in Postgres and sent by the sweeper.
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 1, "socket_timeout": 1}
    )
    app.before_request(refuse_oversized_head)
    app.before_request(refuse_control_characters)
    app.before_request(read_small_body)  # before the rate limit: its key reads the form
    limiter.init_app(app)
    app.register_blueprint(bp)
    app.before_request(refuse_nul_bytes)

    @app.after_request
    def _headers(resp):
        for k, v in SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
        return resp
