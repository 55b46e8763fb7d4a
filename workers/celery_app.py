"""The Celery application; `celery -A workers.celery_app worker` runs it.

The app itself lives in `db.dispatch`, which the web tier uses to send tasks by name; here the
worker's logging is set up (every line names its job: `workers.job_log`), and the worker, beat
and Flower are told to end without Python's teardown once Celery has stopped (`end_now`).
"""

import atexit
import contextlib
import logging
import os
import sys

from celery.apps.worker import Worker
from celery.signals import beat_init, setup_logging, worker_init

from db.dispatch import celery_app as app
from workers import job_log

__all__ = ["app", "end_now"]


@setup_logging.connect
def _setup_logging(loglevel=None, logfile=None, **_) -> None:
    """Replaces Celery's own logging setup (a receiver of this signal means Celery does none)."""
    job_log.configure(loglevel or "INFO", logfile)


def end_now(code: object = 0) -> None:
    """End the process with `code` (as `sys.exit` reads it) once its logs are flushed, without
    dismantling its modules.

    The worker, beat and Flower import the tasks' modules (`include`) and with them the science
    stack, some 1,500 modules: tearing them down took 2-4 s of each one's stop after Ctrl-C on
    `make run` under load (the worker's at low CPU priority: deploy/low-priority.sh), after Celery
    had already stopped its pool, acknowledged or handed back its messages, closed the broker
    connection and saved beat's schedule. Pool processes end with `os._exit` already (billiard).
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    if code is None or isinstance(code, int):
        os._exit(code or 0)
    print(code, file=sys.stderr, flush=True)
    os._exit(1)


@worker_init.connect
def _worker_ends_now(sender=None, **_) -> None:
    """Exit handlers run last-in, first-out: registered after the others, `end_now` runs first,
    with the worker's exit code. An embedded worker (not the `celery worker` command) is left
    alone."""
    if isinstance(sender, Worker):
        atexit.register(lambda: end_now(sender.exitcode))


@beat_init.connect
def _beat_ends_now(**_) -> None:
    """Beat ends normally with 0; an exception it raised was printed and means 1."""
    atexit.register(lambda: end_now(1 if hasattr(sys, "last_value") else 0))
