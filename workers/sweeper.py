"""The sweeper: re-sends the jobs no worker will run, every SWEEP_INTERVAL seconds.

    python -m workers.sweeper

A process of its own, not a Celery task: a task would wait in the queue behind the backlog it is
meant to rescue (it ran 56 s late during a burst), and would fill Flower's task list with a sweep
every few seconds. It needs only Postgres and Redis (no science stack), so it starts in a second.
Several sweepers (one per web host, say) are safe: each locks the rows it re-sends and skips those
another holds. What it re-sends and why: `db.dispatch.sweep`.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import timedelta

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from config import settings
from db.dispatch import sweep

log = logging.getLogger("calserv.sweeper")


def run(stop: threading.Event) -> None:
    """Sweep until `stop` is set; Postgres or Redis being down is logged and tried again."""
    cfg = settings()
    stale_after = timedelta(seconds=cfg.stale_job_seconds)
    log.info(
        "event=sweeper_started interval_s=%d stale_s=%d", cfg.sweep_interval, cfg.stale_job_seconds
    )
    while not stop.is_set():
        try:
            sent = sweep(stale_after)
        except (SQLAlchemyError, RedisError, OSError) as e:
            log.warning("event=sweep_failed error=%r", str(e))
        else:
            if sent:
                log.info("event=sweep resent=%d", len(sent))
        stop.wait(cfg.sweep_interval)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run(stop)
    log.info("event=sweeper_stopped")


if __name__ == "__main__":
    main()
