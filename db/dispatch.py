"""Sending jobs to the queue, always after their row is committed, and re-sending lost ones.

A job row records when its task was handed to the broker (`enqueued_at`, written with the row
itself, before the send); if Redis is unreachable the send fails, `enqueued_at` is cleared and the
sweeper sends the job later: the upload is never lost and the user still gets a job to poll.

Tasks are sent by name through a Celery client configured like the workers (`celeryconfig`), so
neither the web tier nor this module imports the workers package.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import UTC, datetime, timedelta

import redis
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
    """Re-send the jobs no worker will run, and return their ids: never sent (the broker was
    down), running on a worker whose heartbeat stopped for `stale_after` (`STALE_JOB_SECONDS`:
    it died), or sent but gone from the queue (Redis lost its data, someone deleted the queue).

    Runs every `SWEEP_INTERVAL` seconds (`workers.sweeper`) and on demand (`flask --app web jobs
    sweep`). Re-sending is safe: the worker's claim skips a job that has finished or that a live
    worker runs. Each re-send has a task id of its own, so a job whose task was revoked (Flower)
    is run, not dropped.
    """
    now = datetime.now(UTC)
    sent = []
    with session_scope() as s:
        lost = job_states.lost(s, now, stale_after)
        waiting = job_states.sent_and_waiting(s, now)
        if waiting:
            present = queued_job_ids()  # read after the rows are locked: no claim in between
            if present is not None:
                lost += [job for job in waiting if job.id not in present]
        for job in lost:
            log.warning("event=job_resent job=%s state=%s", job.id, job.state.value)
            ok = send(job.id, job.attempts, job.alert.name, job.observatory.name, resend=True)
            job_states.resend(job, now if ok else None)
            if ok:
                sent.append(job.id)
    return sent


#: kombu's Redis transport keeps each message a worker has taken but not acknowledged here
#: (its `unacked_key`), as `[message, exchange, routing_key]`, until the ack.
UNACKED_KEY = "unacked"


def queued_job_ids() -> set[str] | None:
    """The ids of the jobs whose task is in the Redis queue or held by a worker (not yet
    acknowledged); None when Redis cannot be read (then nothing is re-sent for being absent)."""
    queue = celery_app.conf.task_default_queue
    try:
        with redis.Redis.from_url(celery_app.conf.broker_url, socket_timeout=5) as r:
            waiting, held = r.lrange(queue, 0, -1), r.hvals(UNACKED_KEY)
        messages = [*(json.loads(m) for m in waiting), *(json.loads(m)[0] for m in held)]
        return {str(m["headers"]["id"]).split("-", 1)[0] for m in messages}
    except (RedisError, OSError, ValueError, LookupError, TypeError) as e:
        log.warning("event=queue_unreadable error=%r", str(e))
        return None
