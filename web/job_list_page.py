"""`GET /jobs`: the calling observatory's own jobs, newest first, paged, with the file name, the
alert, the state and the result; as a page for its logged-in browser, or as JSON or CSV for a
script that sends its key (`Authorization: Token <key>`). The query is `db.job_list`.
"""

from __future__ import annotations

from datetime import UTC

from flask import Blueprint, redirect, request, url_for

from db.job_list import JobListRow, observatory_jobs
from db.models import JobState
from web.alert_registry import alert_key
from web.auth import HASHTAG_HINT, hashtag_owner, presented_key
from web.dates import date_obs
from web.errors import ApiError
from web.listing import list_response, paging
from web.login import current_observatory, login_url
from web.negotiation import output_format
from web.request_session import db

bp = Blueprint("job_list", __name__)

COLUMNS = (
    "job_id", "status", "created_at", "finished_at", "file_name", "alert", "mjd", "date_obs",
    "mag", "mag_err", "limit", "filter", "survey", "error", "followup_id", "status_url",
    "url_page",
)  # fmt: skip


def _iso(value) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def job_item(r: JobListRow) -> dict:
    result = r.result or {}
    mjd = r.params.get("mjd")
    return {
        "job_id": r.id,
        "status": r.state.value,
        "status_url": url_for("jobs.show", job_id=r.id, _external=True),
        "file_name": r.file_name,
        "alert": r.alert,
        "url_page": url_for("alert_pages.show", key=alert_key(r.alert_id, r.alert), _external=True),
        "mjd": mjd,
        "date_obs": date_obs(mjd),
        "created_at": _iso(r.created_at),
        "finished_at": _iso(r.finished_at),
        "mag": result.get("mag"),
        "mag_err": result.get("mag_err"),
        "limit": result.get("limit"),
        "filter": result.get("filter"),
        "survey": result.get("survey"),
        "error": r.error if r.state == JobState.failed else None,
        "followup_id": r.followup_id,
    }


@bp.get("/jobs")
def index():
    """The observatory's jobs; `state=queued|running|succeeded|failed` keeps one state."""
    if presented_key():
        obs = hashtag_owner(db())
        if obs is None:
            raise ApiError(
                401, "unknown or revoked hashtag", "check the key your operator gave you"
            )
    else:
        obs = current_observatory()
        if obs is None:
            if output_format() == "json":  # any data format: a script, not a browser
                raise ApiError(401, "hashtag is missing", HASHTAG_HINT)
            return redirect(login_url(request.full_path.rstrip("?")), 303)
    raw_state = request.args.get("state", "").strip()
    try:
        state = JobState(raw_state) if raw_state else None
    except ValueError:
        raise ApiError(
            422,
            f"unknown state {raw_state[:20]!r}",
            "state is queued, running, succeeded or failed",
        ) from None
    pg = paging()
    total, rows = observatory_jobs(db(), obs.id, pg.offset, pg.per_page, state)
    pg.check(total)
    return list_response(
        [job_item(r) for r in rows],
        total,
        pg,
        "jobs.html",
        COLUMNS,
        "jobs.csv",
        observatory=obs.name,
        state=raw_state,
    )
