"""`GET /jobs/<id>`: the state and result of a calibration job, read from its Postgres row."""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

from flask import Blueprint, Response, jsonify, make_response, render_template, send_file, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from calib.pipeline import RESULT_KEYS
from web.database import db
from web.errors import ApiError
from web.models import Alert, Followup, Job, JobState, Observatory
from web.negotiation import wants_json

bp = Blueprint("jobs", __name__)
FINISHED = (JobState.succeeded, JobState.failed)

RESULT_FIELDS = (*RESULT_KEYS, "processing_time")  # processing_time is added by the worker


class JobRecord(NamedTuple):
    """A job with what its JSON shows of its alert, observatory and follow-up point."""

    job: Job
    alert: Alert
    observatory: Observatory
    followup_id: int | None


def load_job(s: Session, job_id: str) -> JobRecord | None:
    """The job and what its JSON shows, in one indexed query (by primary key)."""
    if len(job_id) > 32:
        return None
    row = s.execute(
        select(Job, Alert, Observatory, Followup.id)
        .join(Job.alert)
        .join(Job.observatory)
        .outerjoin(Job.followup)
        .where(Job.id == job_id)
    ).one_or_none()
    return None if row is None else JobRecord(*row)


def job_json(rec: JobRecord) -> dict:
    """The job as CPCS users know it (design §2): nulls until the job has succeeded."""
    job = rec.job
    result = job.result or {}
    out = {
        "status": job.state.value,
        "job_id": job.id,
        "status_url": url_for("jobs.show", job_id=job.id, _external=True),
        "alert": rec.alert.name,
        "ivorn": rec.alert.ivorn,
        "observatory": rec.observatory.name,
        "mjd": job.params.get("mjd"),
        "dry_run": job.params.get("dry_run"),
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "attempts": job.attempts,
    }
    out.update({k: result.get(k) for k in RESULT_FIELDS})
    out["followup_id"] = rec.followup_id
    out["image_link"] = (
        url_for("jobs.plot", job_id=job.id, _external=True) if job.image_path else None
    )
    if job.state == JobState.failed:
        out["error"] = job.error
    return out


def job_response(rec: JobRecord, status: int) -> Response:
    """The job's JSON or page; never stored by a cache, as the job's state changes under it."""
    data = job_json(rec)
    resp = jsonify(data) if wants_json() else make_response(render_template("job.html", job=data))
    resp.status_code = status
    resp.headers["Location"] = url_for("jobs.show", job_id=rec.job.id)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def wait_for_job(s: Session, job_id: str, seconds: float) -> JobRecord:
    """Hold the request until the job ends or `seconds` pass (for one-shot scripts)."""
    deadline = time.monotonic() + seconds
    while True:
        s.expire_all()
        rec = load_job(s, job_id)
        if rec.job.state in FINISHED or time.monotonic() >= deadline:
            return rec
        s.rollback()  # end the read transaction so the next poll sees new commits
        time.sleep(0.2)


def _get(job_id: str) -> JobRecord:
    rec = load_job(db(), job_id)
    if rec is None:
        raise ApiError(404, f"unknown job {job_id[:40]!r}", "use the job_id returned by /upload")
    return rec


@bp.get("/jobs/<job_id>")
def show(job_id: str):
    rec = _get(job_id)
    resp = job_response(rec, 200)
    if rec.job.state not in FINISHED:
        resp.headers["Retry-After"] = "1"
    return resp


@bp.get("/jobs/<job_id>/plot.png")
def plot(job_id: str):
    job = _get(job_id).job
    if not job.image_path or not Path(job.image_path).is_file():
        raise ApiError(404, "no calibration plot for this job", "upload with noPlot=0 to get one")
    return send_file(job.image_path, mimetype="image/png", max_age=3600)
