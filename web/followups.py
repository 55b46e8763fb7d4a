"""`GET /followup`: the calibrated follow-up observations of all alerts, newest first, paged,
sortable and filterable (alert, observatory, band, survey, MJD range); HTML, JSON or CSV.

`DELETE /followup/<id>` withdraws a point: only its own observatory may (its hashtag as a form
field, `?hashtag=` or `Authorization: Token <hashtag>`, or its logged-in browser, which posts
`/followup/<id>/withdraw`). A withdrawn point leaves light curves and lists but stays in the
database for audit.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, flash, redirect, request, url_for
from sqlalchemy import func, or_, select

from calib.schema import FIELDS, FOLLOWUP_COLUMNS, followup_result
from db.models import Alert, Followup, Job, Observatory
from db.observations import make_current
from web.alert_registry import alert_key
from web.auth import authenticate
from web.dates import date_obs
from web.errors import ApiError
from web.lightcurve import CURRENT
from web.listing import float_arg, list_response, paging, sort_arg
from web.login import login_required
from web.ops import rate_limited
from web.request_session import db

bp = Blueprint("followups", __name__)

#: The CSV's columns: the row's own, then its result keys that fit a cell (not the lists).
COLUMNS = (
    "followup_id",
    "alert",
    "ivorn",
    "observatory",
    "mjd",
    "date_obs",
    "exptime",
    *(key for key in FOLLOWUP_COLUMNS.values() if FIELDS[key].type is not list),
    "comment",
    "job_id",
    "job_url",
    "plot_url",
    "url_page",
)

#: `sort=` of /followup: column name → SQL expression (`-mjd` sorts descending).
SORTS = {
    "mjd": Followup.mjd,
    "alert": Alert.name,
    "observatory": Observatory.name,
    "filter": Followup.filter,
    "survey": Followup.survey,
    "mag": Followup.mag,
    "exptime": Followup.exptime,
    "followup_id": Followup.id,
}
#: Substring filters: query argument → column.
TEXT_FILTERS = {"observatory": Observatory.name, "band": Followup.filter, "survey": Followup.survey}


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def followup_dict(f: Followup, alert: Alert, obs_name: str, has_plot: bool) -> dict:
    page = url_for("alert_pages.show", key=alert_key(alert.id, alert.name), _external=True)
    return {
        "followup_id": f.id,
        "alert": alert.name,
        "ivorn": alert.ivorn,
        "observatory": obs_name,
        "mjd": f.mjd,
        "date_obs": date_obs(f.mjd),
        "exptime": f.exptime,
        **followup_result(f),
        "comment": f.comment,
        "job_id": f.job_id,
        "job_url": url_for("jobs.show", job_id=f.job_id, _external=True),
        "plot_url": url_for("jobs.plot", job_id=f.job_id, _external=True) if has_plot else None,
        "url_page": page,
        "lightcurve_url": page,
    }


@bp.get("/followup")
def index():
    """`alert` (name or IVORN), `observatory`, `band`, `survey` (substrings, any case), `mjd_min`,
    `mjd_max`, `sort` (`mjd`, `-mjd`, `alert`, ...), `page`, `per_page`."""
    pg = paging()
    mjd_min, mjd_max = float_arg("mjd_min"), float_arg("mjd_max")  # mjd_min > mjd_max: none
    order = sort_arg(SORTS, ("-mjd", "-followup_id"))
    alert = request.args.get("alert", "").strip()[:300]
    query = (
        select(Followup, Alert, Observatory.name, Job.image_path.is_not(None))
        .join(Alert, Alert.id == Followup.alert_id)
        .join(Observatory, Observatory.id == Followup.observatory_id)
        .join(Job, Job.id == Followup.job_id)
        .where(CURRENT)
    )
    if alert:  # a substring of the name or the IVORN, any case
        pattern = _like(alert)
        query = query.where(
            or_(Alert.name.ilike(pattern, escape="\\"), Alert.ivorn.ilike(pattern, escape="\\"))
        )
    filters = {"alert": alert}
    for arg, column in TEXT_FILTERS.items():
        text = request.args.get(arg, "").strip()[:200]
        filters[arg] = text
        if text:
            query = query.where(column.ilike(_like(text), escape="\\"))
    if mjd_min is not None:
        query = query.where(Followup.mjd >= mjd_min)
    if mjd_max is not None:
        query = query.where(Followup.mjd <= mjd_max)
    s = db()
    total = s.scalar(select(func.count()).select_from(query.subquery()))
    pg.check(total)
    rows = s.execute(query.order_by(*order.clauses).offset(pg.offset).limit(pg.per_page))
    items = [followup_dict(f, a, o, bool(p)) for f, a, o, p in rows]
    filters["mjd_min"] = request.args.get("mjd_min", "")
    filters["mjd_max"] = request.args.get("mjd_max", "")
    return list_response(
        items, total, pg, "followup.html", COLUMNS, "followup.csv", filters=filters, sort=order
    )


def _own_point(s, observatory_id: int, followup_id: str) -> Followup:
    """The point, locked, if it belongs to this observatory (403/404 otherwise)."""
    f = None
    if followup_id.isascii() and followup_id.isdigit() and len(followup_id) < 10:
        f = s.get(Followup, int(followup_id), with_for_update=True)
    if f is None:
        raise ApiError(404, f"unknown follow-up point {followup_id[:20]!r}", "see /followup")
    if f.observatory_id != observatory_id:
        raise ApiError(403, "not your observation", "only the observatory that sent it may")
    return f


def withdraw(followup_id: str) -> Followup:
    """Withdraw the point for its own observatory (401/403/404 otherwise); idempotent."""
    s = db()
    obs = authenticate(s)
    f = _own_point(s, obs.id, followup_id)
    if f.withdrawn_at is None:
        f.withdrawn_at = datetime.now(UTC)
    s.commit()
    return f


@bp.delete("/followup/<followup_id>")
@rate_limited
def delete(followup_id: str):
    withdraw(followup_id)
    return Response(status=204)


@bp.post("/followup/<followup_id>/withdraw")
@rate_limited
@login_required
def withdraw_form(obs, followup_id: str):
    """The Withdraw button of a logged-in observatory (CSRF-checked, after the page asked for a
    confirmation): back to the alert page, which says what happened and offers an undo."""
    f = withdraw(followup_id)
    alert = db().get(Alert, f.alert_id)
    flash({"followup_id": f.id, "what": _point_text(f)}, "withdrawn")
    return redirect(url_for("alert_pages.show", key=alert_key(alert.id, alert.name)), 303)


@bp.post("/followup/<followup_id>/restore")
@login_required
def restore_form(obs, followup_id: str):
    """Undo a withdrawal (CSRF-checked): the point is current again, replacing any other point
    of the same observation sent since, as sending the observation again would."""
    s = db()
    f = _own_point(s, obs.id, followup_id)
    make_current(s, f.id)
    s.commit()
    alert = s.get(Alert, f.alert_id)
    flash({"followup_id": f.id, "what": _point_text(f)}, "restored")
    return redirect(url_for("alert_pages.show", key=alert_key(alert.id, alert.name)), 303)


def _point_text(f: Followup) -> str:
    mag = f"> {f.mag:.3f}" if f.is_limit else f"{f.mag:.3f} ± {f.mag_err:.3f}"
    return f"{f.filter} = {mag} of {date_obs(f.mjd)[:16].replace('T', ' ')} UTC"
