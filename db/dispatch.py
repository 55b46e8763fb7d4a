"""Sending jobs to the queue, always after their row is committed, and re-sending lost ones.

A job row records when its task was handed to the broker (`enqueued_at`, written with the row
itself, before the send); if Redis is unreachable the send fails, `enqueued_at` is cleared and the
sweeper sends the job later: the upload is never lost and the user still gets a job to poll.

Tasks are sent by name through a Celery client configured like the workers (`celeryconfig`), so
neither the web tier nor this module imports the workers package.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from db import job_states
from db.session import session_scope

log = logging.getLogger(__name__)

#: The one Celery application of calserv; `workers.celery_app` runs its tasks.
celery_app = Celery("calserv")
celery_app.config_from_object("celeryconfig")

#: The task `workers.tasks.calibrate_job`, sent by name: importing it would load the science stack
#: (numpy, astropy, healpy: seconds of CPU and ~100 MB) into every web process.
CALIBRATE_TASK = "calserv.calibrate_job"


def send(
    job_id: str, attempt: int, alert: str = "", observatory: str = "", resend: bool = False
) -> bool:
    """Send a committed job to the workers; False (logged) when the broker is unreachable.

    The task id names the attempt, so Flower tells a re-run from the first run; the task's
    displayed arguments (`argsrepr`, what Flower and worker logs show) name the alert and the
    observatory. The message itself carries only the job id: never a key. A re-send (the
    sweeper's) gets a new id of its own: workers discard a revoked id for good (a revoke in
    Flower), and the job would otherwise stay queued forever.
    """
    task_id = f"{job_id}-{attempt}" + (f"-r{secrets.token_hex(3)}" if resend else "")
    shown = f"[{job_id!r}, alert={alert!r}, observatory={observatory!r}]"
    try:
        celery_app.send_task(
            CALIBRATE_TASK,
            args=[job_id],
            argsrepr=shown,
            task_id=task_id,
            retry=False,
        )
    except (BrokerError, RedisError, OSError) as e:
        log.warning("event=enqueue_failed job=%s error=%r (left for the sweeper)", job_id, str(e))
        return False
    return True


def sweep(stale_after: timedelta) -> list[str]:
    """Re-send jobs that the queue lost: never sent (broker was down), or queued or running for
    longer than `stale_after` (the `STALE_JOB_SECONDS` setting); returns the ids it sent.

    Runs every `SWEEP_INTERVAL` seconds from Celery beat and on demand (`flask --app web jobs
    sweep`). Re-sending is safe: the worker locks the row and skips jobs that have finished. Each
    re-send has a task id of its own, so a job whose task was revoked (Flower) is run, not dropped.
    """
    now = datetime.now(UTC)
    sent = []
    with session_scope() as s:
        for job in job_states.lost(s, now, stale_after):
            log.warning("event=job_resent job=%s state=%s", job.id, job.state.value)
            ok = send(job.id, job.attempts, job.alert.name, job.observatory.name, resend=True)
            job_states.resend(job, now if ok else None)
            if ok:
                sent.append(job.id)
    return sent
