"""The job state machine: queued → running → succeeded | failed, and back to queued.

Every change of a job row's state is one of these functions, whoever makes it (the upload, the
worker, the sweeper). A job is claimed with a row lock, so a redelivered task resumes its job and a
job that has finished is never written twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, object_session

from db.job_events import publish_job_end
from db.models import Job, JobState

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


def lock(s: Session, job_id: str) -> Job | None:
    """The job's row, locked until the transaction ends; None when there is no such job."""
    return s.get(Job, job_id, with_for_update=True)


def start(job: Job) -> None:
    """queued → running: one more attempt begins now."""
    job.state, job.started_at = JobState.running, datetime.now(UTC)
    job.attempts += 1


def succeed(job: Job, result: dict, image_path: str | None) -> None:
    """running → succeeded, with the result and the path of its plot; waiters are woken at the
    commit (:mod:`db.job_events`)."""
    job.state, job.finished_at = JobState.succeeded, datetime.now(UTC)
    job.result, job.image_path, job.error = result, image_path, None
    _announce_end(job)


def fail(job: Job, error: str) -> None:
    """→ failed, with the reason shown to the user; waiters are woken at the commit."""
    job.state, job.finished_at, job.error = JobState.failed, datetime.now(UTC), error
    _announce_end(job)


def _announce_end(job: Job) -> None:
    """The job-end notification, sent by the transaction that ends the job, with the
    calibration's run time (`processing_time`) when it succeeded: the mean job time that
    `Retry-After` estimates use."""
    took = (job.result or {}).get("processing_time") if job.state == JobState.succeeded else None
    publish_job_end(object_session(job), job.id, took)


def requeue_failed(s: Session, job_id: str) -> bool:
    """failed → queued for a fresh start (the same frame sent again); False if not failed."""
    return s.execute(_REQUEUE_FAILED, {"job_id": job_id}).first() is not None


def mark_unsent(s: Session, job_id: str) -> None:
    """Record that the job's task never reached the broker (and commit), so the sweeper sends it."""
    s.execute(_UNSENT, {"job_id": job_id})
    s.commit()


def lost(s: Session, now: datetime, stale_after: timedelta, limit: int = 500) -> list[Job]:
    """Jobs the queue lost, locked (skipping rows others hold): queued but never sent, queued or
    running for longer than `stale_after`."""
    stale = now - stale_after
    query = (
        select(Job)
        .where(
            or_(
                and_(
                    Job.state == JobState.queued,
                    or_(
                        and_(Job.enqueued_at.is_(None), Job.created_at < now - UNSENT_GRACE),
                        Job.enqueued_at < stale,
                    ),
                ),
                and_(Job.state == JobState.running, Job.started_at < stale),
            )
        )
        .with_for_update(skip_locked=True)
        .limit(limit)
    )
    return list(s.scalars(query))


def resend(job: Job, sent_at: datetime | None) -> None:
    """A lost job goes back to queued; `sent_at` is when its task was sent again (None: not)."""
    job.state = JobState.queued
    if sent_at is not None:
        job.enqueued_at = sent_at
