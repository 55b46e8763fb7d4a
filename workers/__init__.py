"""Celery workers: thin glue between stored uploads, `refcats`, `calib` and the job rows."""
