"""Add what this worker process's reference reads cost since its last report (`refcats.stats`)
to the deployment's Redis hash, which `/metrics` exposes: whichever host a worker runs on, its
cache hits, partition fetches and unreadable surveys are counted."""

from __future__ import annotations

import logging
import threading

from redis import Redis
from redis.exceptions import RedisError

from refcats.stats import delta, stats_key
from refcats.store import RefStore

log = logging.getLogger(__name__)
_reported: dict[str, float] = {}
_lock = threading.Lock()


def report(store: RefStore, redis_url: str, queue: str) -> None:
    """Send the counters' growth; a Redis error is logged and the growth sent next time."""
    global _reported
    with _lock:
        now = store.stats()
        grown = delta(_reported, now)
        if not grown:
            return
        try:
            pipe = Redis.from_url(redis_url, socket_timeout=2).pipeline(transaction=False)
            for field, amount in grown.items():
                pipe.hincrbyfloat(stats_key(queue), field, amount)
            pipe.execute()
        except RedisError as exc:
            log.warning("event=refcat_stats_unsent error=%r", str(exc))
            return
        _reported = now
