"""Every log line a worker writes while it runs a job names the job (`job=<id>`, `job=-` outside
one), through a logging filter on the worker's handler, as redash does for its RQ jobs: messages
need not repeat the id, and a library's warning during a job is tied to it too."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] job=%(job)s %(message)s"
_current_job: ContextVar[str | None] = ContextVar("calserv_job", default=None)


class JobIdFilter(logging.Filter):
    """Adds `record.job`: the id of the job this process is running, or `-`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.job = _current_job.get() or "-"
        return True


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Log lines inside the block carry `job_id`."""
    token = _current_job.set(job_id)
    try:
        yield
    finally:
        _current_job.reset(token)


def configure(loglevel: int | str = logging.INFO, logfile: str | None = None) -> None:
    """The worker's logging: one handler on the root logger, with the job filter and FORMAT."""
    handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler()
    handler.addFilter(JobIdFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(loglevel)
