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
import hashlib
import json
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import bokeh
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
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.engine import Row

from blobstore import BlobNotFound
from calib.schema import LIGHTCURVE_COLUMNS, LIGHTCURVE_JSON_COLUMNS
from db.models import Alert, Followup, Observatory
from web.alert_registry import alert_key, find_alert_by_key, is_web_url
from web.dates import date_obs
from web.errors import ApiError
from web.lightcurve import CURRENT, last_per_filter, lightcurve_rows
from web.lightcurve_consistency import consistency
from web.lightcurve_style import FLAG_COLOUR, LIMIT_HEAD_SVG, LIMIT_SVG, legend_of
from web.listing import csv_response, flag_arg, float_arg, list_response, paging, sort_arg
from web.negotiation import TABLE_FORMATS, negotiate
from web.ops import CSP_FOR_BOKEH
from web.request_session import db
from web.tables import TableInfo, table_response
from web.version import VERSION

if TYPE_CHECKING:
    from refcats.store import RefStore

bp = Blueprint("alert_pages", __name__)
#: Memory for the reference rows that finder charts read (a few partitions).
FINDER_CACHE_BYTES = 64 * 1024 * 1024

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
#: The newest current point of an alert, as `last_point` in its list item.
LAST_POINT_KEYS = ("mag", "mag_err", "limit", "filter", "survey", "observatory")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def sexagesimal(ra: float, dec: float) -> tuple[str, str]:
    """(`hh:mm:ss.ss`, `±dd:mm:ss.s`) of J2000 degrees."""
    from astropy.coordinates import Angle  # loaded by the first alert page, not by the app

    return (
        Angle(ra, unit="deg").to_string(unit="hourangle", sep=":", precision=2, pad=True),
        Angle(dec, unit="deg").to_string(
            unit="deg", sep=":", precision=1, pad=True, alwayssign=True
        ),
    )


def alert_dict(
    a: Alert | Row,
    npoints: int = 0,
    last_mjd: float | None = None,
    last_point: dict | None = None,
) -> dict:
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
        "last_point": last_point,
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
_LAST = (
    select(
        Followup.alert_id,
        Followup.mag,
        Followup.mag_err,
        Followup.is_limit,
        Followup.filter,
        Followup.survey,
        Observatory.name.label("observatory"),
    )
    .join(Observatory, Observatory.id == Followup.observatory_id)
    .where(CURRENT)
    .ext(distinct_on(Followup.alert_id))
    .order_by(Followup.alert_id, Followup.mjd.desc(), Followup.id.desc())
    .subquery()
)


def _last_point(row: Row) -> dict | None:
    if row.filter is None:
        return None
    values = (row.mag, row.mag_err, row.is_limit, row.filter, row.survey, row.observatory)
    return dict(zip(LAST_POINT_KEYS, values, strict=True))


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
#: The smallest (arcsec): a milliarcsecond, far below any position's error.
MIN_RADIUS_ARCSEC = 0.001


def cone_args() -> tuple[float, float, float] | None:
    """`ra, dec` (deg) and `radius` (arcsec, default 5) of a cone search, or None."""
    ra, dec = float_arg("ra"), float_arg("dec")
    if ra is None and dec is None:
        return None
    if ra is None or dec is None or not (0 <= ra < 360 and -90 <= dec <= 90):
        raise ApiError(422, "a cone needs ra and dec", "ra in [0, 360), dec in [-90, 90] deg")
    radius = float_arg("radius")
    radius = 5.0 if radius is None else radius
    if not MIN_RADIUS_ARCSEC <= radius <= MAX_RADIUS_ARCSEC:
        raise ApiError(
            422,
            "radius out of range",
            f"{MIN_RADIUS_ARCSEC:g} <= radius <= {MAX_RADIUS_ARCSEC:g} arcsec",
        )
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
    query = (
        select(Alert, npoints, _STATS.c.last_mjd, *(c for c in _LAST.c if c.name != "alert_id"))
        .outerjoin(_STATS, _STATS.c.alert_id == Alert.id)
        .outerjoin(_LAST, _LAST.c.alert_id == Alert.id)
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
    items = [alert_dict(r[0], r[1], r[2], _last_point(r)) for r in rows]
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


def sky_links(ra: float, dec: float) -> dict[str, str]:
    """Searches of other services by the alert's position (links only: the page itself asks no
    outside service for anything)."""
    coords = urlencode({"Coord": f"{ra:.6f} {dec:+.6f}", "Radius": "10", "Radius.unit": "arcsec"})
    tns = urlencode({"ra": f"{ra:.6f}", "decl": f"{dec:+.6f}", "radius": "10",
                     "coords_unit": "arcsec"})  # fmt: skip
    return {
        "TNS": f"https://www.wis-tns.org/search?{tns}",
        "SIMBAD": f"https://simbad.cds.unistra.fr/simbad/sim-coo?{coords}",
    }


def _alert(key: str) -> Row:
    alert = find_alert_by_key(db(), key)
    if alert is None:
        raise ApiError(404, f"unknown alert {key[:100]!r}", "see /alerts for the known alerts")
    return alert


def _today() -> str:
    """The UTC day: plots show a "now" line, so a plot is made afresh each day too."""
    return datetime.now(UTC).strftime("%Y%m%d")


def _conditional(alert: Row, body_of, mimetype: str) -> Response:
    """`body_of()` answered with the ETag and Last-Modified of the alert's points version (and
    the day); a matching If-None-Match / If-Modified-Since is a 304 without building the body."""
    resp = Response(mimetype=mimetype)
    resp.set_etag(f"lc-{alert.id}-{alert.points_version}-{VERSION}-{_today()}")
    day_start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    resp.last_modified = max(alert.points_changed_at, day_start)
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
    key = f"{folder}{alert.points_version}-{VERSION}-{_today()}.{suffix}"
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
        from web.lightcurve_png import plot_png  # matplotlib: loaded on first use

        rows = lightcurve_rows(db(), alert.id)
        consistency(rows)  # outliers drawn hollow; the body is cached per points version
        return plot_png(rows, alert.name)

    return _conditional(alert, lambda: _cached(alert, "png", png), "image/png")


@bp.get("/alerts/<key>/lightcurve.bokeh.json")
def lightcurve_bokeh(key: str):
    """The interactive plot as a Bokeh `json_item`, embedded by /static/lightcurve.js."""
    alert = _alert(key)

    def item() -> bytes:
        from web.lightcurve_bokeh import bokeh_item  # bokeh's numpy: loaded on first use

        rows = lightcurve_rows(db(), alert.id)
        consistency(rows)  # outliers drawn hollow; the body is cached per points version
        for r in rows:
            r["job_url"] = url_for("jobs.show", job_id=r["job_id"])
        return json.dumps(bokeh_item(rows, alert.name)).encode()

    return _conditional(alert, lambda: _cached(alert, "json", item), "application/json")


def _refstore() -> RefStore:
    """The web tier's reader of the reference store (finder charts), one per process."""
    from refcats.store import RefStore  # numpy and pyarrow: loaded on first use

    ext = current_app.extensions
    if "refstore" not in ext:
        ext["refstore"] = RefStore(Path(current_app.config["REFCAT_DIR"]), FINDER_CACHE_BYTES)
    return ext["refstore"]


@bp.get("/alerts/<key>/finder.png")
def finder(key: str):
    """The finder chart: reference stars within 3′ of the alert from calserv's own store, made
    once per position, store contents and calserv version, and shared through the file store."""
    alert = _alert(key)
    store = _refstore()
    identity = f"{alert.ra:.7f} {alert.dec:.7f} {VERSION} {store.survey_names()}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    blobs = current_app.extensions["blobstore"]
    blob = f"finders/{alert.id}/{digest}.png"
    try:
        with blobs.open(blob) as f:
            body = f.read()
    except BlobNotFound:
        from web.finder_chart import finder_png, richest_field  # matplotlib: on first use

        body = finder_png(richest_field(store, alert.ra, alert.dec), alert.name)
        blobs.put(blob, body)
    resp = Response(body, mimetype="image/png")
    resp.set_etag(digest)
    resp.cache_control.max_age = 86400
    return resp.make_conditional(request)


#: The light curve's formats; JSON (the first) for scripts that name none.
LIGHTCURVE_FORMATS = ("json", "csv", *TABLE_FORMATS)


@bp.get("/alerts/<key>/lightcurve")
def lightcurve(key: str):
    """The light curve as `format=json` (default), `csv`, `votable`, `ecsv` or `fits`;
    `aligned=1` moves each (observatory, filter) system onto its band's reference system."""
    alert = _alert(key)
    fmt = negotiate(LIGHTCURVE_FORMATS)
    rows = lightcurve_rows(db(), alert.id)
    aligned = flag_arg("aligned")
    systems = consistency(rows, aligned)
    name = f"{alert_key(alert.id, alert.name)}-lightcurve{'-aligned' if aligned else ''}"
    columns = [*LIGHTCURVE_JSON_COLUMNS, *(["offset_applied"] if aligned else [])]
    if fmt == "csv":
        return csv_response(rows, LIGHTCURVE_COLUMNS, f"{name}.csv")
    if fmt in TABLE_FORMATS:
        facts = {"name": alert.name, "ivorn": alert.ivorn, "ra": alert.ra, "dec": alert.dec}
        info = TableInfo(title=f"calserv light curve of {alert.name}", facts=facts)
        return table_response(rows, columns, fmt, info, name)
    items = [{k: r[k] for k in columns} for r in rows]
    return jsonify(
        alert=alert.name,
        ivorn=alert.ivorn,
        columns=columns,
        items=items,
        total=len(items),
        aligned=aligned,
        **systems,
    )


@bp.get("/alerts/<key>")
def show(key: str):
    alert = _alert(key)
    rows = lightcurve_rows(db(), alert.id)
    systems = consistency(rows)
    last = rows[-1] if rows else None  # time order
    data = alert_dict(
        alert,
        len(rows),
        last and last["mjd"],
        last and {**{k: last.get(k) for k in LAST_POINT_KEYS}, "mag_err": last["magerr"]},
    )
    if negotiate(("html", "json")) == "json":
        return jsonify(
            **data,
            lightcurve=[{k: r[k] for k in LIGHTCURVE_JSON_COLUMNS} for r in rows],
            offsets=systems["offsets"],
        )
    html = render_template(
        "alert.html",
        alert=data,
        rows=rows,
        offsets=systems["offsets"],
        legend=legend_of(rows),
        latest=last_per_filter(rows),
        sky_links=sky_links(alert.ra, alert.dec),
        limit_svg=LIMIT_SVG,
        limit_head_svg=LIMIT_HEAD_SVG,
        flag_colour=FLAG_COLOUR,
    )
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = CSP_FOR_BOKEH
    return resp


@bp.get("/static/bokeh/<version>/<filename>")
def bokehjs(version: str, filename: str):
    """BokehJS from the installed bokeh wheel (no CDN); the version in the URL makes it
    cacheable for a year."""
    if version != bokeh.__version__:
        raise ApiError(404, "unknown BokehJS version", f"this server has {bokeh.__version__}")
    resp = send_from_directory(Path(bokehjs_path()) / "js", filename, max_age=365 * 86400)
    resp.cache_control.immutable = True
    return resp
