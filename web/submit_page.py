"""The browser side: the home page and the upload form (`/submit`), which queues a job exactly as
`POST /upload` does and sends the browser on to the job page (303)."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for
from sqlalchemy import func, select

from db.models import Alert, Followup, Observatory
from web.errors import ApiError
from web.job_submission import catalogue_file, create_job, parse_params, resolve_alert
from web.keys import KeyOwner
from web.lightcurve import CURRENT
from web.login import login_required
from web.ops import rate_limited
from web.request_session import db

bp = Blueprint("pages", __name__)

UPLOAD_FIELDS = ("EventID", "MJD", "expTime", "matchDist", "forceFilter", "comment")


@bp.get("/")
def home():
    s = db()
    counts = {
        "alerts": s.scalar(select(func.count(Alert.id))),
        "followups": s.scalar(select(func.count(Followup.id)).where(CURRENT)),
        "observatories": s.scalar(select(func.count(Observatory.id))),
    }
    return render_template("home.html", counts=counts)


def _recent_alerts() -> list[str]:
    return list(db().scalars(select(Alert.name).order_by(Alert.id.desc()).limit(200)))


def _form_page(error: ApiError | None = None, status: int = 200) -> Response:
    values = {k: request.form.get(k, "") for k in UPLOAD_FIELDS}
    values["forceFilter"] = values["forceFilter"] or "no"
    if request.method == "GET":
        values["EventID"] = request.args.get("EventID", "")
    html = render_template(
        "submit.html",
        values=values,
        dry_run=request.form.get("dryRun") == "1",
        no_plot=request.form.get("noPlot") == "1",
        alert_names=_recent_alerts(),
        error=error,
    )
    return Response(html, status, mimetype="text/html")


@bp.get("/upload")
@bp.get("/cgi/upload")
def upload_page():
    """A browser that opens the script endpoint gets the upload form."""
    return redirect(url_for("pages.submit_form"), 303)


@bp.get("/submit")
@login_required
def submit_form(obs: KeyOwner):
    return _form_page()


@bp.post("/submit")
@rate_limited
@login_required
def submit(obs: KeyOwner):
    """The browser upload form (CSRF-checked): queue the job, then 303 to its page."""
    s = db()
    try:
        alert = resolve_alert(s, "add it first on the New alert page")
        job = create_job(s, obs, alert, parse_params(dates=True), catalogue_file())
    except ApiError as e:
        s.rollback()
        return _form_page(e, e.status)
    return redirect(url_for("jobs.show", job_id=job.id), 303)
