"""The job state machine: queued → running → succeeded | failed, and back to queued.

Every change of a job row's state is one of these functions, whoever makes it (the upload, the
worker, the sweeper). Every change is guarded by the row's lock and state (a locked read, or an
UPDATE whose WHERE names the states it leaves), so a redelivered task resumes its job and a job
that has finished is never written twice. The worker's start and end are one statement each
(:func:`claim`, :func:`succeed`): its two round trips per job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, object_session

from config import settings
from db.job_events import job_end_payload, notify_job_end, publish_job_end
from db.job_params import JobParams
from db.models import Alert, Followup, Job, JobState, Observatory, Upload

FINISHED = (JobState.succeeded, JobState.failed)
#: A job whose worker died this many times (OOM, SIGKILL) is a poison message: fail it with a
#: reason instead of handing it to the next worker forever.
MAX_ATTEMPTS = 3
#: A queued job whose send failed is re-sent by the sweeper after this long.
UNSENT_GRACE = timedelta(seconds=10)

_JOBS = Job.__table__
_UNSENT = update(_JOBS).where(_JOBS.c.id == bindparam("job_id")).values(enqueued_at=None)
_REQUEUE_FAILED = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("job_id"), _JOBS.c.state == JobState.failed)
    .values(state=JobState.queued, error=None, finished_at=None, attempts=0, enqueued_at=func.now())
    .returning(_JOBS.c.id)
)


@dataclass(frozen=True)
class Claimed:
    """What a worker needs of a job it has just started (the row, its upload, alert and
    observatory)."""

    attempt: int
    params: JobParams
    path: str
    target: tuple[float, float]
    filters: list[str]


_UPLOADS, _ALERTS, _OBS = Upload.__table__, Alert.__table__, Observatory.__table__
#: When a running job's worker last showed it was alive (rows from before heartbeats: its start).
_LAST_SIGN_OF_LIFE = func.coalesce(_JOBS.c.heartbeat_at, _JOBS.c.started_at)
_STALE_BEFORE = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, bindparam("stale_s"))
#: queued (or running with a stale heartbeat: its worker died) → running, and everything the job
#: needs, in one statement: the UPDATE locks the row and re-checks its state once a concurrent
#: writer commits, so two deliveries never both start the same attempt, a job another worker is
#: running (its heartbeat is fresh) is left to it, and a finished job is never started.
_CLAIM = (
    update(_JOBS)
    .where(
        _JOBS.c.id == bindparam("job_id"),
        or_(
            _JOBS.c.state == JobState.queued,
            and_(_JOBS.c.state == JobState.running, _LAST_SIGN_OF_LIFE < _STALE_BEFORE),
        ),
        _JOBS.c.attempts < MAX_ATTEMPTS,
        _JOBS.c.upload_id == _UPLOADS.c.id,
        _JOBS.c.alert_id == _ALERTS.c.id,
        _JOBS.c.observatory_id == _OBS.c.id,
    )
    .values(
        state=JobState.running,
        started_at=func.now(),
        heartbeat_at=func.now(),
        attempts=_JOBS.c.attempts + 1,
    )
    .returning(
        _JOBS.c.attempts,
        _JOBS.c.params,
        _UPLOADS.c.path,
        _ALERTS.c.ra,
        _ALERTS.c.dec,
        _OBS.c.filters,
    )
)


def stale_after() -> timedelta:
    """How long a running job's heartbeat may be silent before its worker counts as dead."""
    return timedelta(seconds=settings().stale_job_seconds)


def claim(s: Session | Connection, job_id: str) -> Claimed | None:
    """queued → running (one more attempt), unless the job is missing, finished, running on a live
    worker or has used its attempts (None: :func:`lock` it to tell which). On an autocommit
    connection this is the whole transaction: one round trip."""
    params = {"job_id": job_id, "stale_s": stale_after().total_seconds()}
    row = s.execute(_CLAIM, params).first()
    if row is None:
        return None
    params = JobParams.from_json(row.params)
    return Claimed(row.attempts, params, row.path, (row.ra, row.dec), list(row.filters or []))


_BEAT = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("job_id"), _JOBS.c.state == JobState.running)
    .values(heartbeat_at=func.now())
)


def beat(conn: Connection, job_id: str) -> None:
    """The worker running the job is alive (its heartbeat, every HEARTBEAT_SECONDS)."""
    conn.execute(_BEAT, {"job_id": job_id})


def alive_elsewhere(s: Session, job: Job) -> bool:
    """The job is running on a worker whose heartbeat is fresh (by the database's clock, as
    :func:`claim` judges it): another delivery leaves it."""
    last = job.heartbeat_at or job.started_at
    if job.state != JobState.running or last is None:
        return False
    return last >= s.scalar(select(func.now())) - stale_after()


_FOLLOWUPS = Followup.__table__
#: A new point's columns: all but those the database fills and those of a point already shown
#: (withdrawn or superseded later, by `db.observations`).
_POINT_COLUMNS = [
    c.name
    for c in _FOLLOWUPS.columns
    if c.name not in ("id", "created_at", "withdrawn_at", "superseded_by")
]
_ENDED = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("job_id"), _JOBS.c.state.not_in(FINISHED))
    .values(
        state=JobState.succeeded,
        finished_at=func.now(),
        result=bindparam("result", type_=_JOBS.c.result.type),
        image_path=bindparam("image_path"),
        error=None,
    )
    .returning(_JOBS.c.id, _JOBS.c.alert_id, _JOBS.c.observatory_id)
    .cte("ended")
)
_NOTIFY = notify_job_end(bindparam("payload"))
_SUCCEED = select(_NOTIFY).select_from(_ENDED)
_POINT = (
    insert(_FOLLOWUPS)
    .from_select(
        _POINT_COLUMNS,
        select(
            _ENDED.c.id,
            _ENDED.c.alert_id,
            _ENDED.c.observatory_id,
            *(
                bindparam(name, type_=_FOLLOWUPS.c[name].type)
                for name in _POINT_COLUMNS
                if name not in ("job_id", "alert_id", "observatory_id")
            ),
        ),
    )
    .returning(_FOLLOWUPS.c.id, _FOLLOWUPS.c.job_id)
    .cte("point")
)
_SUCCEED_WITH_POINT = select(_POINT.c.id, _NOTIFY).select_from(
    _ENDED.join(_POINT, _POINT.c.job_id == _ENDED.c.id)
)


def _end_values(job_id: str, result: dict, image_path: str | None) -> dict:
    return {
        "job_id": job_id,
        "result": result,
        "image_path": image_path,
        "payload": job_end_payload(job_id, result.get("processing_time")),
    }


def succeed(s: Session | Connection, job_id: str, result: dict, image_path: str | None) -> bool:
    """running → succeeded with the result and its plot's path, and the job-end notification,
    without a follow-up point (a dry run): one statement, so on an autocommit connection one
    round trip and one transaction. False (nothing written) when the job had already ended."""
    return s.execute(_SUCCEED, _end_values(job_id, result, image_path)).first() is not None


def succeed_with_point(
    s: Session, job_id: str, result: dict, image_path: str | None, point: dict
) -> int | None:
    """As :func:`succeed`, and the follow-up row from `point` (its columns) in the same
    statement; returns the row's id, or None (nothing written) when the job had already ended.
    The caller makes the point current (`db.observations.make_current`) in the same transaction,
    after this statement: the followups trigger's lock on the alert orders concurrent points."""
    row = s.execute(_SUCCEED_WITH_POINT, {**_end_values(job_id, result, image_path), **point})
    found = row.first()
    return None if found is None else found.id


def lock(s: Session, job_id: str) -> Job | None:
    """The job's row, locked until the transaction ends; None when there is no such job."""
    return s.get(Job, job_id, with_for_update=True)


def fail(job: Job, error: str) -> None:
    """→ failed, with the reason shown to the user; waiters are woken at the commit."""
    job.state, job.finished_at, job.error = JobState.failed, datetime.now(UTC), error
    _announce_end(job)


def _announce_end(job: Job) -> None:
    """The job-end notification of a failed job, sent by the transaction that ends it (a failed
    job's run time says nothing about the mean job time that `Retry-After` estimates use)."""
    publish_job_end(object_session(job), job.id, None)


def requeue_failed(s: Session, job_id: str) -> bool:
    """failed → queued for a fresh start (the same frame sent again); False if not failed."""
    return s.execute(_REQUEUE_FAILED, {"job_id": job_id}).first() is not None


def mark_unsent(s: Session, job_id: str) -> None:
    """Record that the job's task never reached the broker (and commit), so the sweeper sends it."""
    s.execute(_UNSENT, {"job_id": job_id})
    s.commit()


def lost(s: Session, now: datetime, stale_after: timedelta, limit: int = 500) -> list[Job]:
    """Jobs that no worker holds, locked (skipping rows others hold): queued but never sent, or
    running with a heartbeat older than `stale_after` (their worker died)."""
    query = (
        select(Job)
        .where(
            or_(
                and_(
                    Job.state == JobState.queued,
                    Job.enqueued_at.is_(None),
                    Job.created_at < now - UNSENT_GRACE,
                ),
                and_(
                    Job.state == JobState.running,
                    func.coalesce(Job.heartbeat_at, Job.started_at) < now - stale_after,
                ),
            )
        )
        .with_for_update(skip_locked=True)
        .limit(limit)
    )
    return list(s.scalars(query))


def sent_and_waiting(s: Session, now: datetime, limit: int = 5000) -> list[Job]:
    """Queued jobs sent to the broker more than UNSENT_GRACE ago, locked (skipping rows others
    hold): each should still be in the queue, or held by a worker about to start it."""
    query = (
        select(Job)
        .where(Job.state == JobState.queued, Job.enqueued_at < now - UNSENT_GRACE)
        .order_by(Job.enqueued_at)
        .with_for_update(skip_locked=True)
        .limit(limit)
    )
    return list(s.scalars(query))


def resend(job: Job, sent_at: datetime | None) -> None:
    """A lost job goes back to queued; `sent_at` is when its task was sent again (None: not)."""
    job.state = JobState.queued
    if sent_at is not None:
        job.enqueued_at = sent_at
