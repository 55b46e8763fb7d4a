"""The Celery application; `celery -A workers.celery_app worker` runs it.

The app itself lives in `db.dispatch`, which the web tier uses to send tasks by name; here the
worker's logging is set up (every line names its job: `workers.job_log`), and its main process
is told to end as soon as Celery has stopped.
"""

import atexit
import contextlib
import logging
import os
import sys

from celery.apps.worker import Worker
from celery.signals import setup_logging, worker_init

from db.dispatch import celery_app as app
from workers import job_log

__all__ = ["app"]


@setup_logging.connect
def _setup_logging(loglevel=None, logfile=None, **_) -> None:
    """Replaces Celery's own logging setup (a receiver of this signal means Celery does none)."""
    job_log.configure(loglevel or "INFO", logfile)


@worker_init.connect
def _end_quickly(sender=None, **_) -> None:
    """The `celery worker` process skips Python's teardown once Celery has stopped.

    Its main process has the tasks' modules imported, and with them the science stack (some
    1,500 modules); dismantling them took 2-4 s of a 6 s Ctrl-C of `make run` under load (the
    worker runs at low CPU priority: deploy/low-priority.sh), after Celery had already stopped
    its pool, acknowledged or handed back its messages and closed the broker connection. Exit
    handlers run last-in, first-out: registered here, after the others, this one runs first,
    flushes the logs and ends the process with Celery's exit code. The pool processes end with
    `os._exit` already (billiard); an embedded worker (not the `celery worker` command) is left
    alone.
    """
    if isinstance(sender, Worker):
        atexit.register(_exit_now, sender)


def _exit_now(worker: Worker) -> None:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    code = worker.exitcode
    os._exit(code if isinstance(code, int) else 0)
