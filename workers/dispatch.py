"""Sending jobs to the queue, always after their row is committed.

If Redis is unreachable the job stays `queued` with no `enqueued_at` and the sweeper sends it later:
the upload is never lost and the user still gets a job to poll.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError
from sqlalchemy import text, update
from sqlalchemy.orm import Session

from web.models import Job
from workers.celery_app import app as celery_app

log = logging.getLogger(__name__)


#: The task `workers.tasks.calibrate_job`, sent by name: importing it would load the science stack
#: (numpy, astropy, healpy: seconds of CPU and ~100 MB) into every web process.
CALIBRATE_TASK = "calserv.calibrate_job"


def enqueue(s: Session, job: Job) -> bool:
    """Send the committed job to the workers; returns False (and logs) if the broker is down."""
    try:
        celery_app.send_task(
            CALIBRATE_TASK, args=[job.id], task_id=f"{job.id}-{job.attempts}", retry=False
        )
    except (BrokerError, RedisError, OSError) as e:
        log.warning("event=enqueue_failed job=%s error=%r (left for the sweeper)", job.id, str(e))
        return False
    # Losing this timestamp in a crash costs only a harmless re-send, so don't wait for the WAL.
    # One plain UPDATE by primary key (the ORM's unit of work costs more than the statement).
    s.execute(text("SET LOCAL synchronous_commit = off"))
    s.execute(update(Job).where(Job.id == job.id).values(enqueued_at=datetime.now(UTC)))
    s.commit()
    return True
