"""What reading the reference surveys cost, as cumulative counters a process keeps: row-group
cache hits and misses, remote partition fetches and their latency (bucketed), and reads that
failed per survey.

Workers add their counts to one Redis hash per deployment (`workers.refcat_stats`) whichever host
they run on, and `/metrics` exposes the sums (web.metrics); these names are shared by both.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Partition fetch latency buckets, in seconds.
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
CACHE_HITS, CACHE_MISSES = "cache_hits", "cache_misses"
FETCHES, FETCH_SECONDS = "fetches", "fetch_seconds"
#: `unreadable:<survey>`: a frame in the survey's footprint found it unreadable.
UNREADABLE = "unreadable:"


def bucket_field(upper: float) -> str:
    return f"fetch_le:{upper:g}"


def stats_key(queue: str) -> str:
    """The Redis hash of a deployment (its queue's name), so instances sharing a Redis never
    add up."""
    return f"{queue}:refcat-stats"


def delta(before: Mapping[str, float], now: Mapping[str, float]) -> dict[str, float]:
    """The counters that grew from `before` to `now`, by how much."""
    return {k: v - before.get(k, 0) for k, v in now.items() if v != before.get(k, 0)}
