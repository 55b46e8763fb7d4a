"""Celery tasks: a few lines each; the work is in `workers.calibration`."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from sqlalchemy.exc import OperationalError

from config import settings
from db.dispatch import sweep
from workers.calibration import run_job


@shared_task(
    name="calserv.calibrate_job",
    autoretry_for=(OperationalError,),  # Postgres briefly down: try again, lose nothing
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=20,
)
def calibrate_job(job_id: str) -> str:
    return run_job(job_id)


@shared_task(name="calserv.sweep")
def sweep_jobs() -> list[str]:
    return sweep(timedelta(seconds=settings().stale_job_seconds))
