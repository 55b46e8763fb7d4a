"""`GET /metrics` for Prometheus: request latency of the web tier, and the queue as Postgres and
Redis see it at scrape time (jobs by state, job latency, queue length).

Request histograms are per process; under gunicorn, deploy/gunicorn.conf.py points
`PROMETHEUS_MULTIPROC_DIR` at a fresh directory so every worker's samples are summed. The job
metrics are read from the job rows (the truth, whichever host ran the job), so the workers export
nothing and a restarted web tier loses no history.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text

from db.session import engine

bp = Blueprint("metrics", __name__)

REQUEST_SECONDS = Histogram(
    "calserv_http_request_duration_seconds",
    "Time to answer a request, by view (`uploads.upload` is the upload latency)",
    ["endpoint", "method", "code"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
#: Job latency buckets (upload to end), in seconds.
JOB_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
_BUCKET_COLUMNS = ", ".join(
    f"count(*) FILTER (WHERE secs <= {b}) AS le{i}" for i, b in enumerate(JOB_BUCKETS)
)
_JOB_LATENCY = text(
    f"SELECT state, {_BUCKET_COLUMNS}, count(*) AS n, coalesce(sum(secs), 0) AS total FROM ("
    "SELECT state::text AS state, extract(epoch FROM finished_at - created_at) AS secs"
    " FROM jobs WHERE finished_at IS NOT NULL) AS done GROUP BY state"
)
_JOB_STATES = text("SELECT state::text, count(*) FROM jobs GROUP BY state")
_FEEDS = text(
    "SELECT url, last_error IS NULL AS up, failures, rejected_count, alerts,"
    " extract(epoch FROM last_success_at) AS last_success FROM alert_feeds ORDER BY url"
)


class QueueCollector:
    """Jobs by state and finished jobs' latency (Postgres), the broker queue's length (Redis)."""

    def __init__(self, database_url: str, redis_url: str, queue: str):
        self.database_url, self.redis_url, self.queue = database_url, redis_url, queue

    def collect(self):
        states = GaugeMetricFamily("calserv_jobs", "Jobs by state", labels=["state"])
        latency = HistogramMetricFamily(
            "calserv_job_latency_seconds",
            "Time from upload to the job's end, by final state",
            labels=["state"],
        )
        with engine(self.database_url, autocommit=True).connect() as conn:
            counts = dict(conn.execute(_JOB_STATES).all())
            rows = conn.execute(_JOB_LATENCY).all()
            feeds = conn.execute(_FEEDS).all()
        yield from _feed_metrics(feeds)
        for state in ("queued", "running", "succeeded", "failed"):
            states.add_metric([state], counts.get(state, 0))
        for row in rows:
            buckets = [(str(b), row[i + 1]) for i, b in enumerate(JOB_BUCKETS)]
            latency.add_metric([row.state], [*buckets, ("+Inf", row.n)], row.total)
        yield states
        yield latency
        queue = GaugeMetricFamily("calserv_queue_length", "Tasks waiting in the broker queue")
        try:
            queue.add_metric([], Redis.from_url(self.redis_url, socket_timeout=2).llen(self.queue))
            yield queue
        except RedisError:
            pass  # Redis down: /healthz says so; the other metrics still answer


def _feed_metrics(feeds) -> list[GaugeMetricFamily]:
    """The alert feeds' latest syncs (`feeds.sync`): alert on `calserv_alert_feed_up == 0`."""
    families = {
        "up": GaugeMetricFamily(
            "calserv_alert_feed_up", "1 when the feed's latest sync read it", labels=["feed"]
        ),
        "failures": GaugeMetricFamily(
            "calserv_alert_feed_failures", "Failed syncs since the last good one", labels=["feed"]
        ),
        "rejected_count": GaugeMetricFamily(
            "calserv_alert_feed_rows_rejected",
            "Rows the latest good sync could not read",
            labels=["feed"],
        ),
        "alerts": GaugeMetricFamily(
            "calserv_alert_feed_alerts",
            "Alerts in the feed at its latest good sync",
            labels=["feed"],
        ),
        "last_success": GaugeMetricFamily(
            "calserv_alert_feed_last_success_timestamp_seconds",
            "When the feed was last read (Unix time)",
            labels=["feed"],
        ),
    }
    for row in feeds:
        for key, family in families.items():
            value = getattr(row, key)
            if value is not None:
                family.add_metric([row.url], float(value))
    return list(families.values())


def _start_timer() -> None:
    g.metrics_t0 = time.perf_counter()


def _observe(resp: Response) -> Response:
    t0 = g.pop("metrics_t0", None)
    if t0 is not None:
        labels = (request.endpoint or "unknown", request.method, str(resp.status_code))
        REQUEST_SECONDS.labels(*labels).observe(time.perf_counter() - t0)
    return resp


@bp.get("/metrics")
def metrics():
    app_metrics = CollectorRegistry()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        multiprocess.MultiProcessCollector(app_metrics)  # every gunicorn worker's samples
    else:
        app_metrics = REGISTRY
    queue = CollectorRegistry()
    queue.register(current_app.extensions["calserv_queue_collector"])
    body = generate_latest(app_metrics) + generate_latest(queue)
    return Response(body, content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask, database_url: str, redis_url: str, queue: str) -> None:
    app.extensions["calserv_queue_collector"] = QueueCollector(database_url, redis_url, queue)
    app.before_request(_start_timer)
    app.after_request(_observe)
    app.register_blueprint(bp)
