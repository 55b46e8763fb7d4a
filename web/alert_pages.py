"""Browsing alerts: `/alerts` (paged, searchable, sortable), `/alerts/<key>` with its light curve,
and the light curve itself as JSON, CSV (`/alerts/<key>/lightcurve`), a PNG plot and an
interactive (Bokeh) plot.

`<key>` is the alert's name when that is URL-safe, else `<id>-<slug>` (see :func:`alert_key`);
old `/alerts/<name>` links keep working for plain names. Rendered plots are cached per version of
the alert's points (bumped by a database trigger on every change), so a reader costs one indexed
read and, when the plot is unchanged, a 304.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import bokeh
from astropy.coordinates import Angle
from bokeh.util.paths import bokehjs_path
from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from sqlalchemy import func, or_, select
from sqlalchemy.engine import Row

from blobstore import BlobNotFound
from calib.schema import LIGHTCURVE_COLUMNS, LIGHTCURVE_JSON_COLUMNS
from db.models import Alert, Followup, Observatory
from web.alert_registry import alert_key, find_alert_by_key, is_web_url
from web.dates import date_obs
from web.errors import ApiError
from web.lightcurve import CURRENT, lightcurve_rows, plot_png
from web.lightcurve_bokeh import bokeh_item
from web.listing import csv_response, flag_arg, float_arg, list_response, paging, sort_arg
from web.negotiation import TABLE_FORMATS, negotiate
from web.ops import CSP_FOR_BOKEH
from web.request_session import db
from web.tables import TableInfo, table_response
from web.version import VERSION

bp = Blueprint("alert_pages", __name__)

ALERT_COLUMNS = (
    "name",
    "ivorn",
    "ra",
    "dec",
    "ra_hms",
    "dec_dms",
    "alert_mag",
    "classification",
    "discovered",
    "published",
    "url",
    "npoints",
    "last_mjd",
    "last_date_obs",
    "url_page",
)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def sexagesimal(ra: float, dec: float) -> tuple[str, str]:
    """(`hh:mm:ss.ss`, `±dd:mm:ss.s`) of J2000 degrees."""
    return (
        Angle(ra, unit="deg").to_string(unit="hourangle", sep=":", precision=2, pad=True),
        Angle(dec, unit="deg").to_string(
            unit="deg", sep=":", precision=1, pad=True, alwayssign=True
        ),
    )


def alert_dict(a: Alert | Row, npoints: int = 0, last_mjd: float | None = None) -> dict:
    ra_hms, dec_dms = sexagesimal(a.ra, a.dec)
    key = alert_key(a.id, a.name)
    return {
        "name": a.name,
        "ivorn": a.ivorn,
        "ra": a.ra,
        "dec": a.dec,
        "ra_hms": ra_hms,
        "dec_dms": dec_dms,
        "alert_mag": a.alert_mag,
        "classification": a.classification,
        "discovered": a.discovered,
        "published": a.published,
        "comment": a.comment,
        "url": a.url if is_web_url(a.url) else None,  # rows stored before URLs were checked
        "npoints": npoints,
        "last_mjd": last_mjd,
        "last_date_obs": date_obs(last_mjd),
        "key": key,
        "url_page": url_for("alert_pages.show", key=key, _external=True),
    }


_STATS = (
    select(
        Followup.alert_id,
        func.count(Followup.id).label("npoints"),
        func.max(Followup.mjd).label("last_mjd"),
    )
    .where(CURRENT)
    .group_by(Followup.alert_id)
    .subquery()
)
#: `sort=` of /alerts: column name → SQL expression (`-name` sorts descending).
ALERT_SORTS = {
    "name": Alert.name,
    "ra": Alert.ra,
    "dec": Alert.dec,
    "alert_mag": Alert.alert_mag,
    "discovered": Alert.discovered,
    "npoints": func.coalesce(_STATS.c.npoints, 0),
    "last_mjd": _STATS.c.last_mjd,
}


#: `/alerts?band=&survey=&observatory=`: substrings matched against the alerts' current points.
POINT_FILTERS = {
    "band": Followup.filter,
    "survey": Followup.survey,
    "observatory": Observatory.name,
}


#: The largest cone `/alerts?ra=&dec=&radius=` searches (arcsec): one degree.
MAX_RADIUS_ARCSEC = 3600.0


def cone_args() -> tuple[float, float, float] | None:
    """`ra, dec` (deg) and `radius` (arcsec, default 5) of a cone search, or None."""
    ra, dec = float_arg("ra"), float_arg("dec")
    if ra is None and dec is None:
        return None
    if ra is None or dec is None or not (0 <= ra < 360 and -90 <= dec <= 90):
        raise ApiError(422, "a cone needs ra and dec", "ra in [0, 360), dec in [-90, 90] deg")
    radius = float_arg("radius")
    radius = 5.0 if radius is None else radius
    if not 0 < radius <= MAX_RADIUS_ARCSEC:
        raise ApiError(422, "radius out of range", f"0 < radius <= {MAX_RADIUS_ARCSEC:g} arcsec")
    return ra, dec, radius


def separation_deg(ra: float, dec: float):
    """SQL: an alert's angular distance (deg) from (ra, dec), by the haversine formula."""
    dra, ddec = func.radians(Alert.ra - ra) / 2, func.radians(Alert.dec - dec) / 2
    h = func.power(func.sin(ddec), 2) + func.cos(func.radians(Alert.dec)) * func.cos(
        func.radians(dec)
    ) * func.power(func.sin(dra), 2)
    return func.degrees(2 * func.asin(func.sqrt(func.least(h, 1.0))))


@bp.get("/alerts")
def index():
    """Alerts, most recently observed first; `q` searches name and IVORN, `ra`, `dec` and
    `radius` (arcsec) a cone (nearest first), `observed_only=1`, `band`, `survey`, `observatory`
    keep those with a matching point, `sort=<column>` or `sort=-<column>` orders them."""
    pg = paging()
    q = request.args.get("q", "").strip()[:300]
    observed_only = flag_arg("observed_only")
    order = sort_arg(ALERT_SORTS, ("-last_mjd", "-name"))
    npoints = func.coalesce(_STATS.c.npoints, 0)
    query = select(Alert, npoints, _STATS.c.last_mjd).outerjoin(
        _STATS, _STATS.c.alert_id == Alert.id
    )
    if q:
        pattern = _like(q)
        query = query.where(
            or_(Alert.name.ilike(pattern, escape="\\"), Alert.ivorn.ilike(pattern, escape="\\"))
        )
    if observed_only:
        query = query.where(_STATS.c.npoints > 0)
    filters = {}
    for arg, column in POINT_FILTERS.items():
        text = request.args.get(arg, "").strip()[:200]
        filters[arg] = text
        if text:  # alerts with a current point whose band, survey or observatory matches
            query = query.where(
                select(Followup.id)
                .join(Observatory, Observatory.id == Followup.observatory_id)
                .where(Followup.alert_id == Alert.id, CURRENT)
                .where(column.ilike(_like(text), escape="\\"))
                .exists()
            )
    cone = cone_args()
    clauses = order.clauses
    if cone is not None:  # nearest first unless a sort is asked for
        distance = separation_deg(cone[0], cone[1])
        query = query.where(distance <= cone[2] / 3600.0)
        if not request.args.get("sort"):
            clauses = (distance.asc(), *clauses)
    s = db()
    total = s.scalar(select(func.count()).select_from(query.subquery()))
    pg.check(total)
    rows = s.execute(query.order_by(*clauses).offset(pg.offset).limit(pg.per_page))
    items = [alert_dict(a, n, last) for a, n, last in rows]
    return list_response(
        items,
        total,
        pg,
        "alerts.html",
        ALERT_COLUMNS,
        "alerts.csv",
        q=q,
        observed_only=observed_only,
        filters=filters,
        sort=order,
    )


def _alert(key: str) -> Row:
    alert = find_alert_by_key(db(), key)
    if alert is None:
        raise ApiError(404, f"unknown alert {key[:100]!r}", "see /alerts for the known alerts")
    return alert


def _conditional(alert: Row, body_of, mimetype: str) -> Response:
    """`body_of()` answered with the ETag and Last-Modified of the alert's points version; a
    matching If-None-Match / If-Modified-Since is a 304 without building the body."""
    resp = Response(mimetype=mimetype)
    resp.set_etag(f"lc-{alert.id}-{alert.points_version}-{VERSION}")
    resp.last_modified = alert.points_changed_at
    resp.headers["Cache-Control"] = "no-cache"  # revalidate: points may change at any time
    resp.make_conditional(request)
    if resp.status_code != 304:
        resp.set_data(body_of())
    return resp


def _cached(alert: Row, suffix: str, render: Callable[[], bytes]) -> bytes:
    """`render()` of this version of the alert's points, made once per version and shared by all
    web workers and hosts through the file store (the alert's older versions are removed). Readers
    of one host arriving while it is being made wait on a lock file for it instead of making it
    again each."""
    store = current_app.extensions["blobstore"]
    folder = f"lightcurves/{alert.id}/"
    key = f"{folder}{alert.points_version}-{VERSION}.{suffix}"
    with contextlib.suppress(BlobNotFound), store.open(key) as f:
        return f.read()
    lock_path = Path(tempfile.gettempdir()) / f"calserv-lightcurve-{alert.id}.{suffix}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        with contextlib.suppress(BlobNotFound), store.open(key) as f:
            return f.read()  # made by another reader while this one waited
        body = render()
        store.put(key, body)
        for old in store.list(folder):
            if old != key and old.endswith(f".{suffix}"):
                store.delete(old)
    return body


@bp.get("/alerts/<key>/lightcurve.png")
def lightcurve_png(key: str):
    alert = _alert(key)

    def png() -> bytes:
        return plot_png(lightcurve_rows(db(), alert.id), alert.name)

    return _conditional(alert, lambda: _cached(alert, "png", png), "image/png")


@bp.get("/alerts/<key>/lightcurve.bokeh.json")
def lightcurve_bokeh(key: str):
    """The interactive plot as a Bokeh `json_item`, embedded by /static/lightcurve.js."""
    alert = _alert(key)

    def item() -> bytes:
        rows = lightcurve_rows(db(), alert.id)
        for r in rows:
            r["job_url"] = url_for("jobs.show", job_id=r["job_id"])
        return json.dumps(bokeh_item(rows, alert.name)).encode()

    return _conditional(alert, lambda: _cached(alert, "json", item), "application/json")


#: The light curve's formats; JSON (the first) for scripts that name none.
LIGHTCURVE_FORMATS = ("json", "csv", *TABLE_FORMATS)


@bp.get("/alerts/<key>/lightcurve")
def lightcurve(key: str):
    """The light curve as `format=json` (default), `csv`, `votable`, `ecsv` or `fits`."""
    alert = _alert(key)
    fmt = negotiate(LIGHTCURVE_FORMATS)
    rows = lightcurve_rows(db(), alert.id)
    name = f"{alert_key(alert.id, alert.name)}-lightcurve"
    if fmt == "csv":
        return csv_response(rows, LIGHTCURVE_COLUMNS, f"{name}.csv")
    if fmt in TABLE_FORMATS:
        facts = {"name": alert.name, "ivorn": alert.ivorn, "ra": alert.ra, "dec": alert.dec}
        info = TableInfo(title=f"calserv light curve of {alert.name}", facts=facts)
        return table_response(rows, LIGHTCURVE_JSON_COLUMNS, fmt, info, name)
    items = [{k: r[k] for k in LIGHTCURVE_JSON_COLUMNS} for r in rows]
    return jsonify(
        alert=alert.name,
        ivorn=alert.ivorn,
        columns=list(LIGHTCURVE_JSON_COLUMNS),
        items=items,
        total=len(items),
    )


@bp.get("/alerts/<key>")
def show(key: str):
    alert = _alert(key)
    rows = lightcurve_rows(db(), alert.id)
    last = max((r["mjd"] for r in rows), default=None)
    data = alert_dict(alert, len(rows), last)
    if negotiate(("html", "json")) == "json":
        return jsonify(
            **data, lightcurve=[{k: r[k] for k in LIGHTCURVE_JSON_COLUMNS} for r in rows]
        )
    resp = Response(render_template("alert.html", alert=data, rows=rows), mimetype="text/html")
    resp.headers["Content-Security-Policy"] = CSP_FOR_BOKEH
    return resp


@bp.get("/static/bokeh/<version>/<filename>")
def bokehjs(version: str, filename: str):
    """BokehJS from the installed bokeh wheel (no CDN); the version in the URL makes it
    cacheable for a year."""
    if version != bokeh.__version__:
        raise ApiError(404, "unknown BokehJS version", f"this server has {bokeh.__version__}")
    return send_from_directory(Path(bokehjs_path()) / "js", filename, max_age=365 * 86400)
