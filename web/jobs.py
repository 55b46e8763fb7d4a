"""`GET /jobs/<id>`: the state and result of a calibration job, read from its Postgres row."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import NamedTuple, TypeVar

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
from sqlalchemy import Connection, Select, and_, bindparam, func, select
from sqlalchemy.orm import Session

from blobstore import BlobNotFound
from blobstore.keys import cutout_key
from calib.schema import RESULT_KEYS
from db.job_events import RECHECK_S, job_ends
from db.job_states import FINISHED
from db.models import Alert, Followup, Job, JobState, Observatory
from db.session import engine
from web.alert_registry import alert_key
from web.dates import date_obs
from web.errors import ApiError
from web.negotiation import negotiate, wants_json

bp = Blueprint("jobs", __name__)
#: The longest `wait=` a request may hold a thread for.
MAX_WAIT_S = 60
#: `Retry-After` never says more than this (a client re-asks then anyway).
MAX_RETRY_AFTER_S = 300
T = TypeVar("T")


_J, _A, _O, _F = Job.__table__, Alert.__table__, Observatory.__table__, Followup.__table__
#: The job's own columns that its JSON shows; :data:`JOB_VIEW` adds its alert's, observatory's
#: and follow-up's.
JOB_FIELDS = (
    "id",
    "state",
    "params",
    "result",
    "error",
    "image_path",
    "attempts",
    "created_at",
    "finished_at",
    "alert_id",
)
#: What a job's JSON shows (:class:`JobView`), as plain columns: job polls are the busiest
#: request, and this Core statement costs a quarter of the CPU of loading the ORM entities
#: (measured: 0.5 against 2.1 ms).
JOB_VIEW: Select = select(
    *(_J.c[name] for name in JOB_FIELDS),
    _A.c.name.label("alert"),
    _A.c.ivorn,
    _O.c.name.label("observatory"),
    _F.c.id.label("followup_id"),
).select_from(
    _J.join(_A, _A.c.id == _J.c.alert_id)
    .join(_O, _O.c.id == _J.c.observatory_id)
    .outerjoin(_F, _F.c.job_id == _J.c.id)
)
_BY_ID = JOB_VIEW.where(_J.c.id == bindparam("job_id"))
_BY_KEY = JOB_VIEW.where(_J.c.idempotency_key == bindparam("key"))


class JobView(NamedTuple):
    """A job as its JSON shows it: the columns of :data:`JOB_VIEW`, in order."""

    id: str
    state: JobState
    params: dict
    result: dict | None
    error: str | None
    image_path: str | None
    attempts: int
    created_at: datetime | None
    finished_at: datetime | None
    alert_id: int
    alert: str
    ivorn: str
    observatory: str
    followup_id: int | None


def find_job(
    s: Session | Connection, job_id: str | None = None, idempotency_key: str | None = None
) -> JobView | None:
    """The job with this id (or idempotency key) in one indexed query, or None."""
    if job_id is not None:
        if len(job_id) > 32:
            return None
        row = s.execute(_BY_ID, {"job_id": job_id}).one_or_none()
    else:
        row = s.execute(_BY_KEY, {"key": idempotency_key}).one_or_none()
    return None if row is None else JobView(*row)


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
        "mjd": job.params.get("mjd"),
        "date_obs": date_obs(job.params.get("mjd")),
        "url_page": url_for(
            "alert_pages.show", key=alert_key(job.alert_id, job.alert), _external=True
        ),
        "dry_run": job.params.get("dry_run"),
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
        with engine(autocommit=True).connect() as conn:
            resp.headers["Retry-After"] = str(retry_after_s(conn, job.state, job.created_at))
    return resp


_RUNNING_AND_AHEAD = select(
    func.count().filter(_J.c.state == JobState.running),
    func.count().filter(
        and_(_J.c.state == JobState.queued, _J.c.created_at < bindparam("created_at"))
    ),
).where(_J.c.state.in_([JobState.queued, JobState.running]))


def retry_after_s(conn: Connection, state: JobState, created_at: datetime | None) -> int:
    """Whole seconds until a queued or running job is likely to have ended: the queued jobs ahead
    of it, spread over the jobs running now (the workers' parallelism), times the recent mean job
    time this process has seen in job-end notifications; at least 1."""
    mean = job_ends().mean_job_s
    if state == JobState.running or created_at is None:
        estimate = mean
    else:
        running, ahead = conn.execute(_RUNNING_AND_AHEAD, {"created_at": created_at}).one()
        estimate = (ahead / max(1, running) + 1) * mean
    return max(1, min(MAX_RETRY_AFTER_S, math.ceil(estimate)))


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
    with job_ends().watch(job_ids) as woken:
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


def _get(job_id: str) -> JobView:
    # One read: no transaction around it.
    with engine(current_app.config["DATABASE_URL"], autocommit=True).connect() as conn:
        job = find_job(conn, job_id)
    if job is None:
        raise ApiError(404, f"unknown job {job_id[:40]!r}", "use the job_id returned by /upload")
    return job


@bp.get("/jobs/<job_id>")
def show(job_id: str):
    negotiate(("html", "json"))  # another format asked for by name or Accept: 406
    return job_response(_get(job_id), 200)


@bp.get("/jobs/<job_id>/plot.png")
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


@bp.get("/jobs/<job_id>/cutout.png")
def cutout(job_id: str):
    """The ±30″ cutout around the alert (image uploads), written by the worker with the plot."""
    job = _get(job_id)
    return _send_blob(
        cutout_key(job.id) if job.image_path else None,
        "no cutout for this job",
        "cutouts are made for FITS image uploads with noPlot=0",
    )
