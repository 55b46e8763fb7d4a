"""The browser side: the home page and the upload form (`/submit`), which queues a job exactly as
`POST /upload` does and sends the browser on to the job page (303)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import func, select
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import parse_form_data

from db.models import Alert, Followup, Observatory
from web.errors import ApiError, error_response, too_large_detail
from web.job_submission import catalogue_file, create_job, parse_params, resolve_alert
from web.keys import KeyOwner
from web.lightcurve import CURRENT
from web.login import login_required
from web.ops import rate_limited
from web.request_session import db

bp = Blueprint("pages", __name__)

UPLOAD_FIELDS = ("EventID", "MJD", "expTime", "matchDist", "forceFilter", "comment")
#: Room left in MAX_CONTENT_LENGTH for the form's text fields and multipart framing: the form's
#: script refuses a file larger than the rest before sending it.
FORM_FIELDS_BYTES = 64 * 1024
#: An over-size form up to this many times the limit is still read (its file dropped unread) to
#: give the observer the form back with their fields; a larger one gets the plain 413.
RECOVER_FACTOR = 4


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


def _form_page(
    error: ApiError | None = None, status: int = 200, form: Mapping[str, str] | None = None
) -> Response:
    form = request.form if form is None else form
    values = {k: form.get(k, "") for k in UPLOAD_FIELDS}
    values["forceFilter"] = values["forceFilter"] or "no"
    if request.method == "GET":
        values["EventID"] = request.args.get("EventID", "")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    html = render_template(
        "submit.html",
        max_upload_mb=limit / 1e6,
        max_file_bytes=limit - FORM_FIELDS_BYTES,
        values=values,
        dry_run=form.get("dryRun") == "1",
        no_plot=form.get("noPlot") == "1",
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


def _discard(*_args, **_kwargs):
    """Where the files of an over-size form go: nowhere."""
    return open(os.devnull, "w+b")


@bp.errorhandler(RequestEntityTooLarge)
def too_large(e: RequestEntityTooLarge):
    """An upload larger than the limit got past the form's own check (no JavaScript, an old
    browser): the form comes back with the observer's fields and what is accepted. The text
    fields are read from the body and the file is dropped unread; only for a logged-in browser
    and a body within RECOVER_FACTOR of the limit, anything else gets the plain 413 answer."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    length = request.content_length or 0
    if not (request.endpoint == "pages.submit" and session.get("observatory")) or (
        length > RECOVER_FACTOR * limit
    ):
        return error_response(413, e.name.lower(), too_large_detail(limit))
    _, form, _ = parse_form_data(
        request.environ, stream_factory=_discard, max_form_memory_size=1 << 20
    )
    detail = too_large_detail(limit) + "; then choose the file again"
    error = ApiError(413, f"the file is larger than {limit / 1e6:.3g} MB", detail)
    return _form_page(error, 413, form)
