"""`GET /followup`: the calibrated follow-up observations of all alerts, newest first, paged and
filterable by alert, observatory and MJD range; HTML, JSON or CSV."""

from __future__ import annotations

from flask import Blueprint, request, url_for
from sqlalchemy import func, or_, select

from calib.schema import FIELDS, FOLLOWUP_COLUMNS, followup_result
from db.models import Alert, Followup, Job, Observatory
from web.errors import ApiError
from web.listing import float_arg, list_response, paging
from web.request_session import db

bp = Blueprint("followups", __name__)

#: The CSV's columns: the row's own, then its result keys that fit a cell (not the lists).
COLUMNS = (
    "followup_id",
    "alert",
    "ivorn",
    "observatory",
    "mjd",
    "exptime",
    *(key for key in FOLLOWUP_COLUMNS.values() if FIELDS[key].type is not list),
    "comment",
    "job_id",
    "job_url",
    "plot_url",
)


def followup_dict(f: Followup, alert: Alert, obs_name: str, has_plot: bool) -> dict:
    return {
        "followup_id": f.id,
        "alert": alert.name,
        "ivorn": alert.ivorn,
        "observatory": obs_name,
        "mjd": f.mjd,
        "exptime": f.exptime,
        **followup_result(f),
        "comment": f.comment,
        "job_id": f.job_id,
        "job_url": url_for("jobs.show", job_id=f.job_id, _external=True),
        "plot_url": url_for("jobs.plot", job_id=f.job_id, _external=True) if has_plot else None,
        "lightcurve_url": url_for("alert_pages.show", name=alert.name, _external=True),
    }


@bp.get("/followup")
def index():
    """`alert` (name or IVORN), `observatory` (name), `mjd_min`, `mjd_max`, `page`, `per_page`."""
    pg = paging()
    mjd_min, mjd_max = float_arg("mjd_min"), float_arg("mjd_max")
    if mjd_min is not None and mjd_max is not None and mjd_min > mjd_max:
        raise ApiError(422, "mjd_min is after mjd_max", "give mjd_min <= mjd_max")
    alert = request.args.get("alert", "").strip()[:300]
    observatory = request.args.get("observatory", "").strip()[:200]
    query = (
        select(Followup, Alert, Observatory.name, Job.image_path.is_not(None))
        .join(Alert, Alert.id == Followup.alert_id)
        .join(Observatory, Observatory.id == Followup.observatory_id)
        .join(Job, Job.id == Followup.job_id)
    )
    if alert:
        query = query.where(or_(Alert.ivorn == alert, func.lower(Alert.name) == alert.lower()))
    if observatory:
        query = query.where(func.lower(Observatory.name) == observatory.lower())
    if mjd_min is not None:
        query = query.where(Followup.mjd >= mjd_min)
    if mjd_max is not None:
        query = query.where(Followup.mjd <= mjd_max)
    s = db()
    total = s.scalar(select(func.count()).select_from(query.subquery()))
    rows = s.execute(
        query.order_by(Followup.mjd.desc(), Followup.id.desc()).offset(pg.offset).limit(pg.per_page)
    )
    items = [followup_dict(f, a, o, bool(p)) for f, a, o, p in rows]
    filters = {
        "alert": alert,
        "observatory": observatory,
        "mjd_min": request.args.get("mjd_min", ""),
        "mjd_max": request.args.get("mjd_max", ""),
    }
    return list_response(
        items, total, pg, "followup.html", COLUMNS, "followup.csv", filters=filters
    )
