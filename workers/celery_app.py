"""The Celery application; `celery -A workers.celery_app worker` runs it."""

from celery import Celery

app = Celery("calserv")
app.config_from_object("celeryconfig")
