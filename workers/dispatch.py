"""Sending jobs to the queue, always after their row is committed.

A job row records when its task was handed to the broker (`enqueued_at`, written with the row
itself, before the send); if Redis is unreachable the send fails, `enqueued_at` is cleared and the
sweeper sends the job later: the upload is never lost and the user still gets a job to poll.
"""

from __future__ import annotations

import logging

from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError
from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from web.models import Job
from workers.celery_app import app as celery_app

log = logging.getLogger(__name__)

#: The task `workers.tasks.calibrate_job`, sent by name: importing it would load the science stack
#: (numpy, astropy, healpy: seconds of CPU and ~100 MB) into every web process.
CALIBRATE_TASK = "calserv.calibrate_job"
_UNSENT = update(Job.__table__).where(Job.__table__.c.id == bindparam("job_id"))


def send(job_id: str, attempt: int) -> bool:
    """Send a committed job to the workers; False (logged) when the broker is unreachable.

    The task id names the attempt, so Flower tells a re-run from the first run.
    """
    try:
        celery_app.send_task(
            CALIBRATE_TASK, args=[job_id], task_id=f"{job_id}-{attempt}", retry=False
        )
    except (BrokerError, RedisError, OSError) as e:
        log.warning("event=enqueue_failed job=%s error=%r (left for the sweeper)", job_id, str(e))
        return False
    return True


def mark_unsent(s: Session, job_id: str) -> None:
    """Record that the job's task never reached the broker, so that the sweeper sends it."""
    s.execute(_UNSENT.values(enqueued_at=None), {"job_id": job_id})
    s.commit()
