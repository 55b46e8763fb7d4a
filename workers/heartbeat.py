"""The job's heartbeat: while a job runs, a thread of its worker stamps the row every
HEARTBEAT_SECONDS (`db.job_states.beat`). When the worker dies (SIGKILL, OOM, its host), the
stamps stop and the sweeper re-sends the job after STALE_JOB_SECONDS, instead of the broker's
visibility timeout (minutes)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from db import job_states
from db.session import engine

log = logging.getLogger(__name__)


@contextmanager
def heartbeat(job_id: str, every_s: float) -> Iterator[None]:
    """Stamp the job's row every `every_s` seconds until the block ends. A stamp that fails
    (Postgres briefly down) is logged and tried at the next beat; the job goes on."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            try:
                with engine(autocommit=True).connect() as conn:
                    job_states.beat(conn, job_id)
            except Exception as e:
                log.warning("event=heartbeat_failed job=%s error=%r", job_id, str(e))

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every_s)
