"""Browsing observatories: `/observatories` (paged) and `/observatories/<key>` with each filter's
instrument model and its history plotted over time (zero point, depth, FWHM, colour term).

`<key>` is the observatory's name when URL-safe, else `<id>-<slug>` (as for alerts). Nothing of
the observatory's key (hashtag) is ever read here.
"""

from __future__ import annotations

import json
import re

from flask import Blueprint, Response, jsonify, render_template, url_for
from sqlalchemy import func, select
from sqlalchemy.engine import Row

from db import instrument
from db.models import Followup, Observatory
from web.alert_registry import alert_key, slug
from web.dates import date_obs
from web.errors import ApiError
from web.lightcurve import CURRENT
from web.listing import LIST_FORMATS, list_response, paging, sort_arg
from web.negotiation import TABLE_FORMATS, negotiate, output_format
from web.ops import CSP_FOR_BOKEH
from web.request_session import db

bp = Blueprint("observatory_pages", __name__)

#: The columns of `/observatories` (CSV, and every JSON item).
OBSERVATORY_COLUMNS = (
    "name", "lon", "lat", "filters", "npoints", "last_mjd", "last_date_obs", "url_page",
)  # fmt: skip
#: The model's numbers shown per filter (the first eight are the documented contract).
MODEL_KEYS = (
    "colour_term", "colour_term_err", "zeropoint_median", "zeropoint_scatter", "depth_median",
    "fwhm_median", "n_frames", "last_date_obs", "colour_term_scatter", "zeropoint_trend",
    "exptime_scaling", "exptime_ref", "depth_scatter", "fwhm_scatter", "first_date_obs",
)  # fmt: skip
FRAME_KEYS = (
    "followup_id", "job_id", "alert", "alert_url", "mjd", "date_obs", "filter", "survey", "exptime",
    "zeropoint", "zeropoint_err", "colour_term", "colour_term_err", "depth", "fwhm", "npoints",
    "flags",
)  # fmt: skip
#: Frames shown on a page (the most recent).
MAX_FRAMES = 1000

_OBS = Observatory.__table__
_PUBLIC = select(_OBS.c.id, _OBS.c.name, _OBS.c.lon, _OBS.c.lat, _OBS.c.filters)
_ID_SLUG = re.compile(r"(\d+)-([a-z0-9-]*)")
_STATS = (
    select(
        Followup.observatory_id,
        func.count(Followup.id).label("npoints"),
        func.max(Followup.mjd).label("last_mjd"),
    )
    .where(CURRENT)
    .group_by(Followup.observatory_id)
    .subquery()
)
SORTS = {
    "name": _OBS.c.name,
    "npoints": func.coalesce(_STATS.c.npoints, 0),
    "last_mjd": _STATS.c.last_mjd,
}


def observatory_dict(o: Row, npoints: int = 0, last_mjd: float | None = None) -> dict:
    key = alert_key(o.id, o.name)  # the same rule as alerts' keys
    return {
        "name": o.name,
        "lon": o.lon,
        "lat": o.lat,
        "filters": list(o.filters or []),
        "npoints": npoints,
        "last_mjd": last_mjd,
        "last_date_obs": date_obs(last_mjd),
        "key": key,
        "url_page": url_for("observatory_pages.show", key=key, _external=True),
    }


@bp.get("/observatories")
def index():
    """Observatories with their number of current points and their last one; `sort=` by
    `name`, `npoints` or `last_mjd` (`-` for descending)."""
    pg = paging()
    order = sort_arg(SORTS, ("name",))
    npoints = func.coalesce(_STATS.c.npoints, 0).label("npoints")
    query = _PUBLIC.add_columns(npoints, _STATS.c.last_mjd).outerjoin(
        _STATS, _STATS.c.observatory_id == _OBS.c.id
    )
    s = db()
    total = s.scalar(select(func.count()).select_from(_OBS))
    pg.check(total)
    rows = s.execute(query.order_by(*order.clauses).offset(pg.offset).limit(pg.per_page))
    items = [observatory_dict(o, o.npoints, o.last_mjd) for o in rows]
    if negotiate(LIST_FORMATS) in ("csv", *TABLE_FORMATS):  # one cell: "R V"
        items = [{**item, "filters": " ".join(item["filters"])} for item in items]
    return list_response(
        items, total, pg, "observatories.html", OBSERVATORY_COLUMNS, "observatories.csv", sort=order
    )


def _observatory(key: str) -> Row:
    s = db()
    m = _ID_SLUG.fullmatch(key)
    if m:
        row = s.execute(_PUBLIC.where(_OBS.c.id == int(m.group(1)))).first()
        if row is not None and slug(row.name) == m.group(2):
            return row
    row = s.execute(_PUBLIC.where(_OBS.c.name == key)).first()
    if row is None:
        raise ApiError(
            404, f"unknown observatory {key[:100]!r}", "see /observatories for the known ones"
        )
    return row


def _model(row: dict) -> dict:
    out = {k: row.get(k) for k in MODEL_KEYS}
    out["last_date_obs"] = date_obs(row["last_mjd"])
    out["first_date_obs"] = date_obs(row["first_mjd"])
    return out


def _frames(observatory_id: int) -> list[dict]:
    rows = instrument.frames(db(), observatory_id, limit=MAX_FRAMES)
    for r in rows:
        r["date_obs"] = date_obs(r["mjd"])
        r["alert_url"] = url_for(
            "alert_pages.show", key=alert_key(r["alert_id"], r["alert"]), _external=True
        )
    return [{k: r[k] for k in FRAME_KEYS} for r in rows]


@bp.get("/observatories/<key>")
def show(key: str):
    """The observatory, its instrument model per filter and its most recent frames."""
    o = _observatory(key)
    data = observatory_dict(o)
    models = {m["filter"]: _model(m) for m in instrument.models(db(), o.id)}
    frames = _frames(o.id)
    data["npoints"] = len(frames)
    data["last_mjd"] = frames[-1]["mjd"] if frames else None
    data["last_date_obs"] = date_obs(data["last_mjd"])
    if output_format() == "json":
        return jsonify(
            name=o.name,
            lon=o.lon,
            lat=o.lat,
            filters=data["filters"],
            url_page=data["url_page"],
            instrument=models,
            frames=frames,
        )
    html = render_template("observatory.html", observatory=data, models=models, frames=frames)
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = CSP_FOR_BOKEH
    return resp


@bp.get("/observatories/<key>/history.bokeh.json")
def history_bokeh(key: str):
    """The history plots as a Bokeh `json_item`, embedded by /static/observatory.js."""
    o = _observatory(key)
    frames = _frames(o.id)
    for f in frames:
        f["job_url"] = url_for("jobs.show", job_id=f["job_id"])
    from web.instrument_bokeh import history_item  # bokeh's numpy: loaded on first use

    body = json.dumps(history_item(frames, o.name))
    resp = Response(body, mimetype="application/json")
    resp.headers["Cache-Control"] = "no-cache"
    return resp
