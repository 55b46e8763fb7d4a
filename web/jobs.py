"""`GET /jobs/<id>`: the state and result of a calibration job, read from its Postgres row."""

from __future__ import annotations

import time
from pathlib import Path

from flask import Blueprint, Response, jsonify, make_response, render_template, send_file, url_for
from sqlalchemy.orm import Session, joinedload

from web.database import db
from web.errors import ApiError
from web.models import Job, JobState
from web.negotiation import wants_json

bp = Blueprint("jobs", __name__)

RESULT_FIELDS = [
    "survey",
    "filter",
    "mag",
    "mag_err",
    "limit",
    "limiting_mag",
    "zeropoint",
    "zeropoint_err",
    "colour_term",
    "scatter",
    "npoints",
    "outlier_fraction",
    "match_dist",
    "ra",
    "dec",
    "processing_time",
    "candidates",
    "log",
]


def job_json(job: Job) -> dict:
    """The job as CPCS users know it (design §2): nulls until the job has succeeded."""
    result = job.result or {}
    out = {
        "status": job.state.value,
        "job_id": job.id,
        "status_url": url_for("jobs.show", job_id=job.id, _external=True),
        "alert": job.alert.name,
        "ivorn": job.alert.ivorn,
        "observatory": job.observatory.name,
        "mjd": job.params.get("mjd"),
        "dry_run": job.params.get("dry_run"),
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "attempts": job.attempts,
    }
    out.update({k: result.get(k) for k in RESULT_FIELDS})
    out["followup_id"] = job.followup.id if job.followup else None
    out["image_link"] = (
        url_for("jobs.plot", job_id=job.id, _external=True) if job.image_path else None
    )
    if job.state == JobState.failed:
        out["error"] = job.error
    return out


def job_response(job: Job, status: int) -> Response:
    data = job_json(job)
    resp = jsonify(data) if wants_json() else make_response(render_template("job.html", job=data))
    resp.status_code = status
    resp.headers["Location"] = url_for("jobs.show", job_id=job.id)
    return resp


def wait_for_job(s: Session, job_id: str, seconds: float) -> Job:
    """Hold the request until the job ends or `seconds` pass (for one-shot scripts)."""
    deadline = time.monotonic() + seconds
    while True:
        s.expire_all()
        job = s.get(Job, job_id)
        if job.state in (JobState.succeeded, JobState.failed) or time.monotonic() >= deadline:
            return job
        s.rollback()  # end the read transaction so the next poll sees new commits
        time.sleep(0.2)


def _get(job_id: str) -> Job:
    job = None
    if len(job_id) <= 32:  # one query for the job and everything its JSON shows
        job = db().get(Job, job_id, options=[joinedload("*")])
    if job is None:
        raise ApiError(404, f"unknown job {job_id[:40]!r}", "use the job_id returned by /upload")
    return job


@bp.get("/jobs/<job_id>")
def show(job_id: str):
    job = _get(job_id)
    finished = job.state in (JobState.succeeded, JobState.failed)
    resp = job_response(job, 200)
    if not finished:
        resp.headers["Retry-After"] = "1"
    return resp


@bp.get("/jobs/<job_id>/plot.png")
def plot(job_id: str):
    job = _get(job_id)
    if not job.image_path or not Path(job.image_path).is_file():
        raise ApiError(404, "no calibration plot for this job", "upload with noPlot=0 to get one")
    return send_file(job.image_path, mimetype="image/png", max_age=3600)
