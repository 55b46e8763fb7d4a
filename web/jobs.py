"""`GET /jobs/<id>`: the state and result of a calibration job, read from its Postgres row."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    make_response,
    render_template,
    send_file,
    url_for,
)
from sqlalchemy import Connection
from werkzeug.routing import BaseConverter

from blobstore import BlobNotFound
from blobstore.keys import cutout_key
from calib.schema import RESULT_KEYS
from db.job_events import RECHECK_S, JobEnds, job_ends
from db.job_params import JobParams
from db.job_states import FINISHED
from db.jobs import JobView, find_job, running_and_ahead
from db.models import JobState
from db.session import engine
from web.alert_registry import alert_key
from web.dates import date_obs
from web.errors import ApiError
from web.negotiation import negotiate, wants_json

bp = Blueprint("jobs", __name__)


class JobIdConverter(BaseConverter):
    """A job id in a URL: 32 hex digits (`uuid4().hex`), so `/jobs/status` is never a job and
    a malformed id is a 404 before any query."""

    regex = "[0-9a-f]{32}"


#: The longest `wait=` a request may hold a thread for.
MAX_WAIT_S = 60
#: `Retry-After` never says more than this (a client re-asks then anyway).
MAX_RETRY_AFTER_S = 300
T = TypeVar("T")


#: The upload fields a job was sent with, by their form names, as the job page lists them.
OPTION_NAMES = {
    "mjd": "MJD",
    "exptime": "expTime",
    "match_dist": "matchDist",
    "force_filter": "forceFilter",
    "dry_run": "dryRun",
    "no_plot": "noPlot",
    "comment": "comment",
}


def job_options(params: JobParams) -> dict:
    """The job's upload options under their form names (`forceFilter`, `matchDist`, ...), every
    one of them, null where it was not given."""
    return {name: getattr(params, key) for key, name in OPTION_NAMES.items()}


def job_json(job: JobView) -> dict:
    """The job's public JSON: its state, and the result keys (`calib.schema`), null until the
    job has succeeded."""
    result = job.result or {}
    out = {
        "status": job.state.value,
        "job_id": job.id,
        "status_url": url_for("jobs.show", job_id=job.id, _external=True),
        "alert": job.alert,
        "ivorn": job.ivorn,
        "observatory": job.observatory,
        "mjd": job.params.mjd,
        "date_obs": date_obs(job.params.mjd),
        "url_page": url_for(
            "alert_pages.show", key=alert_key(job.alert_id, job.alert), _external=True
        ),
        "dry_run": job.params.dry_run,
        "file_name": job.file_name,
        "options": job_options(job.params),
        "created_at": job.created_at.astimezone(UTC).isoformat() if job.created_at else None,
        "finished_at": job.finished_at.astimezone(UTC).isoformat() if job.finished_at else None,
        "attempts": job.attempts,
    }
    out.update({k: result.get(k) for k in RESULT_KEYS})
    if result.get("cutout_url"):  # stored as a path; shown as a full URL like image_link
        out["cutout_url"] = url_for("jobs.cutout", job_id=job.id, _external=True)
    out["followup_id"] = job.followup_id
    out["image_link"] = (
        url_for("jobs.plot", job_id=job.id, _external=True) if job.image_path else None
    )
    if job.state == JobState.failed:
        out["error"] = job.error
    return out


def job_response(job: JobView, status: int) -> Response:
    """The job's JSON or page; never stored by a cache, as the job's state changes under it.
    An unfinished job's answer says in `Retry-After` when it is likely to have ended."""
    data = job_json(job)
    resp = jsonify(data) if wants_json() else make_response(render_template("job.html", job=data))
    resp.status_code = status
    resp.headers["Location"] = url_for("jobs.show", job_id=job.id)
    resp.headers["Cache-Control"] = "no-store"
    if job.state not in FINISHED:
        with read_connection() as conn:
            wait = retry_after_s(conn, job.state, job.created_at, job.heartbeat_at)
            resp.headers["Retry-After"] = str(wait)
    return resp


def retry_after_s(
    conn: Connection,
    state: JobState,
    created_at: datetime | None,
    heartbeat_at: datetime | None = None,
) -> int:
    """Whole seconds until a queued or running job is likely to have ended: the queued jobs ahead
    of it, spread over the jobs running now (the workers' parallelism), times the recent mean job
    time this process has seen in job-end notifications; for a running job whose heartbeat has
    gone quiet, the time until the sweeper sends it again too; at least 1."""
    mean = _job_ends().mean_job_s
    if state == JobState.running or created_at is None:
        estimate = mean + _until_resent_s(heartbeat_at)
    else:
        running, ahead = running_and_ahead(conn, created_at)
        estimate = (ahead / max(1, running) + 1) * mean
    return max(1, min(MAX_RETRY_AFTER_S, math.ceil(estimate)))


def _until_resent_s(heartbeat_at: datetime | None) -> float:
    """0 while the job's worker beats; once a beat is late the worker may be dead, and the job
    runs again only after the sweeper re-sends it: STALE_JOB_SECONDS after its last beat, at the
    next sweep (`db.dispatch.sweep`)."""
    if heartbeat_at is None:
        return 0.0
    cfg = current_app.config
    silent_s = (datetime.now(UTC) - heartbeat_at).total_seconds()
    if silent_s <= 1.5 * cfg["HEARTBEAT_SECONDS"]:
        return 0.0
    return max(0.0, cfg["STALE_JOB_SECONDS"] - silent_s) + cfg["SWEEP_INTERVAL"]


_WAITERS: threading.BoundedSemaphore | None = None
_WAITERS_LOCK = threading.Lock()


@contextmanager
def waiter_slot() -> Iterator[bool]:
    """One of this process's `MAX_WAITERS` waiting slots, or False when all are taken: a waiting
    request holds a server thread, and the others must stay free for everything else (health
    checks, uploads), so a request beyond the cap is answered at once instead."""
    global _WAITERS
    with _WAITERS_LOCK:
        if _WAITERS is None:
            _WAITERS = threading.BoundedSemaphore(current_app.config["MAX_WAITERS"])
    got = _WAITERS.acquire(blocking=False)
    try:
        yield got
    finally:
        if got:
            _WAITERS.release()


def wait_for_end(
    job_ids: list[str], seconds: float, read: Callable[[], T], done: Callable[[T], bool]
) -> T:
    """`read()` again each time one of `job_ids` ends, until `done(read())` or `seconds` pass.

    Woken by the job-end notification (:mod:`db.job_events`), so the answer leaves within
    milliseconds of the job's commit; without one it re-reads every `RECHECK_S` seconds.
    """
    deadline = time.monotonic() + seconds
    with _job_ends().watch(job_ids) as woken:
        while True:
            woken.clear()  # before the read: an end during the read still wakes the next wait
            value = read()
            left = deadline - time.monotonic()
            if done(value) or left <= 0:
                return value
            woken.wait(min(left, RECHECK_S))


def wait_for_job(job_id: str, seconds: float) -> JobView:
    """Hold the request until the job ends or `seconds` pass (for one-shot scripts)."""
    return wait_for_end([job_id], seconds, lambda: _get(job_id), lambda j: j.state in FINISHED)


def read_connection() -> Connection:
    """A connection of the app's database for one-statement reads: no transaction around them
    (`db.session.engine`'s autocommit engine)."""
    return engine(current_app.config["DATABASE_URL"], autocommit=True).connect()


def _job_ends() -> JobEnds:
    return job_ends(current_app.config["DATABASE_URL"])


def _get(job_id: str) -> JobView:
    with read_connection() as conn:
        job = find_job(conn, job_id)
    if job is None:
        raise ApiError(404, f"unknown job {job_id[:40]!r}", "use the job_id returned by /upload")
    return job


@bp.get("/jobs/<job_id:job_id>")
def show(job_id: str):
    negotiate(("html", "json"))  # another format asked for by name or Accept: 406
    return job_response(_get(job_id), 200)


@bp.get("/jobs/<job_id:job_id>/plot.png")
def plot(job_id: str):
    job = _get(job_id)
    return _send_blob(job.image_path, "no calibration plot for this job", "upload with noPlot=0")


def _send_blob(key: str | None, missing: str, hint: str) -> Response:
    """A PNG streamed from the store through this host (the store need not be reachable by
    clients, and the URL stays the same whichever backend holds it)."""
    try:
        if key is None:
            raise BlobNotFound(missing)
        f = current_app.extensions["blobstore"].open(key)
    except BlobNotFound:
        raise ApiError(404, missing, hint) from None
    # A finished job's images never change: cached for an hour, ETag from their key.
    return send_file(f, mimetype="image/png", max_age=3600, etag=key.replace("/", "-"))


@bp.get("/jobs/<job_id:job_id>/cutout.png")
def cutout(job_id: str):
    """The ±30″ cutout around the alert (image uploads), written by the worker with the plot."""
    job = _get(job_id)
    return _send_blob(
        cutout_key(job.id) if job.image_path else None,
        "no cutout for this job",
        "cutouts are made for FITS image uploads with noPlot=0",
    )
