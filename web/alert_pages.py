"""Browsing alerts: `/alerts` (paged, searchable), `/alerts/<name>` with its light curve, and the
light curve itself as JSON, CSV (`/alerts/<name>/lightcurve`) or a PNG plot."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template, request, url_for
from sqlalchemy import func, or_, select
from sqlalchemy.engine import Row

from calib.schema import LIGHTCURVE_COLUMNS, LIGHTCURVE_JSON_COLUMNS
from db.models import Alert, Followup
from web.alert_registry import find_alert, is_web_url
from web.errors import ApiError
from web.lightcurve import lightcurve_rows, plot_png
from web.listing import csv_response, flag_arg, list_response, paging
from web.negotiation import output_format
from web.request_session import db

bp = Blueprint("alert_pages", __name__)

ALERT_COLUMNS = (
    "name",
    "ivorn",
    "ra",
    "dec",
    "alert_mag",
    "classification",
    "published",
    "url",
    "npoints",
    "last_mjd",
    "url_page",
)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def alert_dict(a: Alert | Row, npoints: int = 0, last_mjd: float | None = None) -> dict:
    return {
        "name": a.name,
        "ivorn": a.ivorn,
        "ra": a.ra,
        "dec": a.dec,
        "alert_mag": a.alert_mag,
        "classification": a.classification,
        "published": a.published,
        "comment": a.comment,
        "url": a.url if is_web_url(a.url) else None,  # rows stored before URLs were checked
        "npoints": npoints,
        "last_mjd": last_mjd,
        "url_page": url_for("alert_pages.show", name=a.name, _external=True),
    }


@bp.get("/alerts")
def index():
    """Alerts, most recently observed first; `q` searches name and IVORN, `observed_only=1`."""
    pg = paging()
    q = request.args.get("q", "").strip()[:300]
    observed_only = flag_arg("observed_only")
    stats = (
        select(
            Followup.alert_id,
            func.count(Followup.id).label("npoints"),
            func.max(Followup.mjd).label("last_mjd"),
        )
        .group_by(Followup.alert_id)
        .subquery()
    )
    npoints = func.coalesce(stats.c.npoints, 0)
    query = select(Alert, npoints, stats.c.last_mjd).outerjoin(stats, stats.c.alert_id == Alert.id)
    if q:
        pattern = _like(q)
        query = query.where(
            or_(Alert.name.ilike(pattern, escape="\\"), Alert.ivorn.ilike(pattern, escape="\\"))
        )
    if observed_only:
        query = query.where(stats.c.npoints > 0)
    s = db()
    total = s.scalar(select(func.count()).select_from(query.subquery()))
    rows = s.execute(
        query.order_by(stats.c.last_mjd.desc().nulls_last(), Alert.name.desc())
        .offset(pg.offset)
        .limit(pg.per_page)
    )
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
    )


def _alert(name: str) -> Row:
    alert = find_alert(db(), name)
    if alert is None:
        raise ApiError(404, f"unknown alert {name[:100]!r}", "see /alerts for the known alerts")
    return alert


@bp.get("/alerts/<name>/lightcurve.png")
def lightcurve_png(name: str):
    alert = _alert(name)
    png = plot_png(lightcurve_rows(db(), alert.id), f"{alert.name}")
    resp = Response(png, mimetype="image/png")
    resp.headers["Cache-Control"] = "no-cache"
    resp.add_etag()
    return resp.make_conditional(request)


@bp.get("/alerts/<name>/lightcurve")
def lightcurve(name: str):
    """The light curve as `format=json` (default for scripts) or `format=csv`."""
    alert = _alert(name)
    rows = lightcurve_rows(db(), alert.id)
    if output_format() == "csv":
        return csv_response(rows, LIGHTCURVE_COLUMNS, f"{alert.name}-lightcurve.csv")
    items = [{k: r[k] for k in LIGHTCURVE_JSON_COLUMNS} for r in rows]
    return jsonify(
        alert=alert.name,
        ivorn=alert.ivorn,
        columns=list(LIGHTCURVE_JSON_COLUMNS),
        items=items,
        total=len(items),
    )


@bp.get("/alerts/<name>")
def show(name: str):
    alert = _alert(name)
    rows = lightcurve_rows(db(), alert.id)
    last = max((r["mjd"] for r in rows), default=None)
    data = alert_dict(alert, len(rows), last)
    if output_format() == "json":
        return jsonify(
            **data, lightcurve=[{k: r[k] for k in LIGHTCURVE_JSON_COLUMNS} for r in rows]
        )
    return render_template("alert.html", alert=data, rows=rows)
