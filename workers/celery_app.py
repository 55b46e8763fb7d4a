"""The Celery application; `celery -A workers.celery_app worker` runs it.

The app itself lives in `db.dispatch`, which the web tier uses to send tasks by name; here the
worker's logging is set up (every line names its job: `workers.job_log`).
"""

from celery.signals import setup_logging

from db.dispatch import celery_app as app
from workers import job_log

__all__ = ["app"]


@setup_logging.connect
def _setup_logging(loglevel=None, logfile=None, **_) -> None:
    """Replaces Celery's own logging setup (a receiver of this signal means Celery does none)."""
    job_log.configure(loglevel or "INFO", logfile)
