"""What an operator's probes see: `/healthz` names each reference survey's state without failing
for one that is down, and `/metrics` (Prometheus text or OpenMetrics) exposes the surveys, job
counters and processing-time histograms, and the workers' reference-read counters."""

from __future__ import annotations

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from refcats.ingest import ingest
from refcats.registry import Registration, save
from refcats.stats import stats_key
from tests.helpers import DATA


@pytest.fixture(scope="module")
def monitored(database, tmp_path_factory):
    """An app whose store holds a built survey and a registered one that does not answer."""
    from web import create_app

    root = tmp_path_factory.mktemp("monitored-refcats")
    ingest(root, "SYNTH", DATA / "synth-deep" / "ref.csv", ["V"])
    save(root, Registration("FARAWAY", "http://127.0.0.1:9/hats", {"R": ("R", None)}))
    overrides = {"TESTING": True, "REFCAT_DIR": str(root), "REFCAT_DISK_CACHE_DIR": str(root)}
    return create_app(overrides=overrides).test_client()


def test_healthz_names_a_down_survey_without_failing(monitored):
    resp = monitored.get("/healthz")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["postgres"] == body["redis"] == "ok"
    assert body["surveys"]["SYNTH"] == "ok"
    assert body["surveys"]["FARAWAY"].startswith("degraded: ")
    assert body["status"] == "degraded"


def _families(text: str, parse=text_string_to_metric_families) -> dict[str, list]:
    return {f.name: f.samples for f in parse(text)}


def test_metrics_expose_surveys_jobs_and_reads(monitored, redis_client, app):
    redis_client.hset(stats_key(app.config["RATELIMIT_KEY_PREFIX"]), "cache_hits", 7)
    resp = monitored.get("/metrics")
    assert resp.headers["Content-Type"].startswith("text/plain")
    found = _families(resp.get_data(as_text=True))
    up = {s.labels["survey"]: s.value for s in found["calserv_survey_up"]}
    assert up == {"SYNTH": 1.0, "FARAWAY": 0.0}
    assert found["calserv_jobs_finished"][0].name == "calserv_jobs_finished_total"
    assert {s.labels["state"] for s in found["calserv_jobs_in_progress"]} == {"queued", "running"}
    assert "calserv_job_processing_seconds" in found
    assert found["calserv_refcat_cache_hits"][0].value == 7
    assert "calserv_refcat_fetch_seconds" in found


def test_metrics_in_openmetrics_when_asked(monitored):
    resp = monitored.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
    text = resp.get_data(as_text=True)
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    found = _families(text, openmetrics_families)  # the strict parser: raises on any fault
    assert found["calserv_jobs_finished"][0].name == "calserv_jobs_finished_total"
