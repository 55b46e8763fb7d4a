"""`GET /metrics` for Prometheus (or OpenMetrics, when asked): request latency of the web tier,
the queue as Postgres and Redis see it at scrape time (jobs, their latency and processing time,
queue length), the reference surveys' state and what the workers report of reading them.

Request histograms are per process; under gunicorn, deploy/gunicorn.conf.py points
`PROMETHEUS_MULTIPROC_DIR` at a fresh directory so every worker's samples are summed. The job
metrics are read from the job rows (the truth, whichever host ran the job), so a restarted web
tier loses no history; the workers' reference-read counters are summed in Redis, whichever host
they run on.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import REGISTRY, CollectorRegistry, Histogram, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import TextClause, text

from db.session import engine
from refcats import stats as refcat_stats
from web.survey_status import survey_states

bp = Blueprint("metrics", __name__)

REQUEST_SECONDS = Histogram(
    "calserv_http_request_duration_seconds",
    "Time to answer a request, by view (`uploads.upload` is the upload latency)",
    ["endpoint", "method", "code"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
#: Job latency and processing-time buckets, in seconds.
JOB_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
_BUCKET_COLUMNS = ", ".join(
    f"count(*) FILTER (WHERE secs <= {b}) AS le{i}" for i, b in enumerate(JOB_BUCKETS)
)


def _histogram_query(start: str) -> TextClause:
    """Finished jobs by final state: bucket counts, count and sum of `finished_at - start`."""
    return text(
        f"SELECT state, {_BUCKET_COLUMNS}, count(*) AS n, coalesce(sum(secs), 0) AS total FROM ("
        f"SELECT state::text AS state, extract(epoch FROM finished_at - {start}) AS secs"
        f" FROM jobs WHERE finished_at IS NOT NULL AND {start} IS NOT NULL) AS done"
        " GROUP BY state"
    )


_JOB_LATENCY = _histogram_query("created_at")
_JOB_PROCESSING = _histogram_query("started_at")
_JOB_STATES = text("SELECT state::text, count(*) FROM jobs GROUP BY state")
UNFINISHED, OUTCOMES = ("queued", "running"), ("succeeded", "failed")


def _histogram(name: str, doc: str, label: str, rows) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=[label])
    for row in rows:
        buckets = [(str(b), row[i + 1]) for i, b in enumerate(JOB_BUCKETS)]
        family.add_metric([row.state], [*buckets, ("+Inf", row.n)], row.total)
    return family


_FEEDS = text(
    "SELECT url, last_error IS NULL AS up, failures, rejected_count, alerts,"
    " extract(epoch FROM last_success_at) AS last_success FROM alert_feeds ORDER BY url"
)


class QueueCollector:
    """The jobs as their rows say (Postgres), the broker queue's length (Redis), and what the
    workers report of their reference-survey reads (`workers.refcat_stats`, in Redis).

    Jobs that ended are counters (`calserv_jobs_finished_total` by outcome, never decreasing
    while rows are kept); jobs waiting or running now are a gauge.
    """

    def __init__(self, database_url: str, redis_url: str, queue: str):
        self.database_url, self.redis_url, self.queue = database_url, redis_url, queue

    def collect(self):
        with engine(self.database_url, autocommit=True).connect() as conn:
            counts = dict(conn.execute(_JOB_STATES).all())
            latency = conn.execute(_JOB_LATENCY).all()
            processing = conn.execute(_JOB_PROCESSING).all()
            feeds = conn.execute(_FEEDS).all()
        yield from _feed_metrics(feeds)
        now = GaugeMetricFamily(
            "calserv_jobs_in_progress", "Jobs queued or running now", labels=["state"]
        )
        for state in UNFINISHED:
            now.add_metric([state], counts.get(state, 0))
        yield now
        ended = CounterMetricFamily(
            "calserv_jobs_finished", "Jobs that have ended, by outcome", labels=["outcome"]
        )
        for outcome in OUTCOMES:
            ended.add_metric([outcome], counts.get(outcome, 0))
        yield ended
        yield CounterMetricFamily(
            "calserv_jobs_created", "Jobs ever accepted", value=sum(counts.values())
        )
        yield _histogram(
            "calserv_job_latency_seconds",
            "Time from upload to the job's end, by final state",
            "state",
            latency,
        )
        yield _histogram(
            "calserv_job_processing_seconds",
            "Time a worker took, from the job's start to its end, by outcome",
            "outcome",
            processing,
        )
        try:
            redis = Redis.from_url(self.redis_url, socket_timeout=2)
            queue = GaugeMetricFamily("calserv_queue_length", "Tasks waiting in the broker queue")
            queue.add_metric([], redis.llen(self.queue))
            yield queue
            totals = redis.hgetall(refcat_stats.stats_key(self.queue))
            yield from _refcat_families({k.decode(): float(v) for k, v in totals.items()})
        except RedisError:
            pass  # Redis down: /healthz says so; the other metrics still answer


def _refcat_families(totals: dict[str, float]):
    """The workers' reference-read counters (`refcats.stats`) as metric families."""
    yield CounterMetricFamily(
        "calserv_refcat_cache_hits",
        "Row groups the workers found in their in-memory cache",
        value=totals.get(refcat_stats.CACHE_HITS, 0),
    )
    yield CounterMetricFamily(
        "calserv_refcat_cache_misses",
        "Row groups the workers had to read from a partition file",
        value=totals.get(refcat_stats.CACHE_MISSES, 0),
    )
    fetch = HistogramMetricFamily(
        "calserv_refcat_fetch_seconds",
        "Time to fetch one remote partition file into the disk cache",
    )
    buckets = [
        (f"{b:g}", totals.get(refcat_stats.bucket_field(b), 0)) for b in refcat_stats.FETCH_BUCKETS
    ]
    count = totals.get(refcat_stats.FETCHES, 0)
    fetch.add_metric([], [*buckets, ("+Inf", count)], totals.get(refcat_stats.FETCH_SECONDS, 0))
    yield fetch
    unreadable = CounterMetricFamily(
        "calserv_refcat_unreadable",
        "Frames in a survey's footprint for which the survey could not be read",
        labels=["survey"],
    )
    for key, n in sorted(totals.items()):
        if key.startswith(refcat_stats.UNREADABLE):
            unreadable.add_metric([key.removeprefix(refcat_stats.UNREADABLE)], n)
    yield unreadable


class SurveyCollector:
    """`calserv_survey_up`: 1 for each reference survey that is ok, 0 for a degraded one."""

    def __init__(self, states: dict[str, str]):
        self.states = states

    def collect(self):
        up = GaugeMetricFamily(
            "calserv_survey_up",
            "Whether a reference survey is usable (see /healthz)",
            labels=["survey"],
        )
        for name, state in sorted(self.states.items()):
            up.add_metric([name], 1 if state == "ok" else 0)
        yield up


class _Registry:
    """Another registry's collectors, as one collector."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()


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
    """The Prometheus text format, or OpenMetrics when the scraper's Accept asks for it."""
    everything = CollectorRegistry(auto_describe=False)
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        multiprocess.MultiProcessCollector(everything)  # every gunicorn worker's samples
    else:
        everything.register(_Registry(REGISTRY))
    everything.register(current_app.extensions["calserv_queue_collector"])
    everything.register(SurveyCollector(survey_states()))
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encoder(everything), content_type=content_type)


def init_app(app: Flask, database_url: str, redis_url: str, queue: str) -> None:
    app.extensions["calserv_queue_collector"] = QueueCollector(database_url, redis_url, queue)
    app.before_request(_start_timer)
    app.after_request(_observe)
    app.register_blueprint(bp)
