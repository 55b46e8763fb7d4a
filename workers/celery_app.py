"""The Celery application; `celery -A workers.celery_app worker` runs it.

The app itself lives in `db.dispatch`, which the web tier uses to send tasks by name.
"""

from db.dispatch import celery_app as app

__all__ = ["app"]
