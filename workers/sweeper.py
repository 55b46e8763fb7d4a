"""Re-send jobs that the queue lost: never sent (broker was down), or stuck past every time limit.

Runs every `SWEEP_INTERVAL` seconds from Celery beat and on demand (`flask --app web jobs sweep`).
Re-sending is safe: `run_job` locks the row and skips jobs that have finished.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select

from config import settings
from web.db import session_scope
from web.models import Job, JobState
from workers.dispatch import send

log = logging.getLogger(__name__)
UNSENT_GRACE = timedelta(seconds=10)


def sweep() -> int:
    """Re-enqueue lost jobs; returns how many were sent."""
    cfg = settings()
    now = datetime.now(UTC)
    stale = now - timedelta(seconds=cfg.stale_job_seconds)
    sent = 0
    with session_scope() as s:
        lost = s.scalars(
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
            .limit(500)
        ).all()
        for job in lost:
            log.warning("event=job_resent job=%s state=%s", job.id, job.state.value)
            if job.state == JobState.running:
                job.state = JobState.queued
            if send(job.id, job.attempts):
                job.enqueued_at = now
                sent += 1
    return sent
