"""Celery tasks: a few lines each; the work is in `workers.calibration`."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_process_init
from sqlalchemy.exc import OperationalError

from blobstore import StoreUnavailable
from config import settings
from feeds.sync import sync_feed
from workers.calibration import JobFailed, run_job, warm_up

log = logging.getLogger(__name__)


@worker_process_init.connect
def _warm_up(**_) -> None:
    """Each pool process warms up as it starts, so that its first job is as fast as the next."""
    log.info("event=worker_warm %s", warm_up())


@shared_task(
    name="calserv.calibrate_job",
    # Postgres or the file store briefly down: try again, lose nothing.
    autoretry_for=(OperationalError, StoreUnavailable),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=20,
    throws=(JobFailed,),  # an expected outcome: logged without a traceback, FAILURE in Flower
)
def calibrate_job(job_id: str) -> str:
    return run_job(job_id)


@shared_task(name="calserv.sync_alert_feeds")
def sync_alert_feeds() -> dict[str, str]:
    """Each configured alert feed once; a failing feed is recorded (/healthz), not raised."""
    s = settings()
    out = {}
    for url in s.alert_feed_urls:
        report = sync_feed(url, s.alert_feed_timeout)
        out[url] = "failed" if report is None else f"{report.added} added, {report.updated} updated"
    return out
