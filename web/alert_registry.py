"""Alerts: lookup by IVORN or name, and `POST /newevent` to insert one."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, redirect, render_template, url_for
from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Alert
from web.auth import authenticate
from web.errors import ApiError
from web.hygiene import single_line
from web.keys import KeyOwner
from web.login import login_required
from web.ops import rate_limited
from web.request_session import db
from web.seedparams import seed_value

bp = Blueprint("alerts", __name__)


_ALERTS = Alert.__table__
_BY_IVORN_OR_NAME = select(_ALERTS).where(
    or_(
        _ALERTS.c.ivorn == bindparam("event"),
        # lower() on both sides: Python's and the database's case folding differ beyond ASCII
        func.lower(_ALERTS.c.name) == func.lower(bindparam("event")),
    )
)


def find_alert(s: Session, event: str) -> Row | None:
    """The alert (its columns) whose IVORN or name (case-insensitive) is `event`.

    A Core row, not the ORM entity: every upload looks its alert up, read-only.
    """
    event = event.strip()[:300]
    return s.execute(_BY_IVORN_OR_NAME, {"event": event}).first()


def is_web_url(url: str | None) -> bool:
    """True for an absolute http(s) URL: the only kind calserv stores or links (a `javascript:`
    or `data:` link would run script on calserv's own pages)."""
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


#: Names that are their own page key: URL-safe, and not of the `<id>-<slug>` form.
_PLAIN_NAME = re.compile(r"(?!\d+-)[A-Za-z0-9][A-Za-z0-9._~+-]*")
_ID_SLUG = re.compile(r"(\d+)-([a-z0-9-]*)")


def slug(name: str) -> str:
    """`name` in lower-case ASCII letters, digits and dashes (`"SN 2024/abc"` → `sn-2024-abc`)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def alert_key(alert_id: int, name: str) -> str:
    """The alert's address under /alerts/: its name when that is URL-safe (`Gaia16aye`), else
    `<id>-<slug>` (`17-sn-2024-abc`), which works for any name ('/', '$', quotes, unicode)."""
    return name if _PLAIN_NAME.fullmatch(name) else f"{alert_id}-{slug(name)}"


def find_alert_by_key(s: Session, key: str) -> Row | None:
    """The alert at /alerts/<key>: an `<id>-<slug>` key, else a name or IVORN (old links)."""
    m = _ID_SLUG.fullmatch(key)
    if m:
        alert = s.execute(select(_ALERTS).where(_ALERTS.c.id == int(m.group(1)))).first()
        if alert is not None and slug(alert.name) == m.group(2):
            return alert
    return find_alert(s, key)


#: The longest alert name (the `alerts.name` column's length).
MAX_NAME_CHARS = 100


def validate_alert(ivorn: str, name: str, ra: float, dec: float, url: str | None = None) -> None:
    for field, value in (("EventID", ivorn), ("name", name), ("url", url or "")):
        single_line(field, value)
    if len(ivorn) > 300:
        raise ApiError(422, f"EventID is too long ({len(ivorn)} characters)", "at most 300")
    if not ivorn.startswith("ivo://"):
        raise ApiError(422, "EventID must be an IVORN", "e.g. ivo://110610")
    if not name:
        raise ApiError(422, "name is required", "e.g. Gaia16aye (at most 100 characters)")
    if len(name) > MAX_NAME_CHARS:
        raise ApiError(
            422, f"name is too long ({len(name)} characters)", "an alert name has at most 100"
        )
    if not (0.0 <= ra < 360.0 and -90.0 <= dec <= 90.0):
        raise ApiError(422, "ra/dec out of range", "ra in [0, 360), dec in [-90, 90] degrees")
    if url is not None and len(url) > 1000:
        raise ApiError(422, f"url is too long ({len(url)} characters)", "at most 1000")
    if url is not None and not is_web_url(url):
        raise ApiError(422, "url must be an http(s) address", "e.g. https://example.org/alert")


def add_alert(
    s: Session, ivorn: str, name: str, ra: float, dec: float, url: str | None = None, **extra
) -> Alert:
    validate_alert(ivorn, name, ra, dec, url)
    alert = Alert(ivorn=ivorn, name=name, ra=ra, dec=dec, url=url, **extra)
    s.add(alert)
    try:
        s.commit()
    except IntegrityError:
        s.rollback()
        raise ApiError(409, "alert exists", f"{ivorn} or {name} is already known") from None
    return alert


NEWEVENT_FIELDS = ("EventID", "name", "ra", "dec", "url")


def _newevent_page(error: ApiError | None = None, status: int = 200) -> Response:
    values = {k: seed_value(k, "") for k in NEWEVENT_FIELDS}
    html = render_template("newevent.html", values=values, error=error)
    return Response(html, status, mimetype="text/html")


@bp.get("/newevent")
@login_required
def newevent_form(obs: KeyOwner):
    """The browser form for `POST /newevent` (logged-in observers)."""
    return _newevent_page()


@bp.post("/newevent")
@bp.post("/cgi/newevent")
@rate_limited
def newevent():
    """Insert an alert. Scripts get 201 + JSON; the browser form (`outputFormat=html`) is
    CSRF-checked and sent on to the alert's page (303), or shown again with the error."""
    if seed_value("outputFormat", "").lower() != "html":
        alert = _insert_from_form()
        resp = jsonify(ivorn=alert.ivorn, name=alert.name, ra=alert.ra, dec=alert.dec, id=alert.id)
        resp.status_code = 201
        return resp
    try:
        alert = _insert_from_form()
    except ApiError as e:
        db().rollback()
        return _newevent_page(e, e.status)
    return redirect(url_for("alert_pages.show", key=alert_key(alert.id, alert.name)), 303)


def _insert_from_form() -> Alert:
    s = db()
    authenticate(s)
    try:
        ra, dec = float(seed_value("ra", "")), float(seed_value("dec", ""))
    except ValueError:
        raise ApiError(422, "ra and dec must be numbers in degrees", "e.g. ra=295.00471") from None
    return add_alert(
        s,
        seed_value("EventID", "").strip(),
        seed_value("name", "").strip(),
        ra,
        dec,
        url=seed_value("url", "").strip() or None,
    )
