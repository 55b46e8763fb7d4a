"""`/metrics` of the live gunicorn (two worker processes): upload latency summed over both, and
the queue as the job rows say."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from db.models import Alert, Job
from db.session import session_scope
from tests.helpers import DATA, add_alert, wait_job

FRAME = DATA / "gaia-demo" / "frame.cat"


def scrape(url: str) -> dict[str, list]:
    with urllib.request.urlopen(f"{url}/metrics") as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def _value(samples, name: str, **labels) -> float:
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_metrics_count_uploads_across_workers_and_jobs_by_state(
    app, client, live_server, observatory
):
    name = f"Metrics{secrets.token_hex(3)}"
    add_alert(app, f"ivo://metrics/{name}", name, 120.0, 45.0)
    before = scrape(live_server)
    uploads = 4
    for i in range(uploads):
        out = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
             f"Authorization: Token {observatory['hashtag']}", "-F", f"sexCat=@{FRAME}",
             "-F", f"EventID={name}", "-F", "dryRun=1", "-F", "noPlot=1", "-F", f"comment={i}",
             "-F", f"MJD={60000 + i}.5",  # another observation each (a comment is presentation)
             f"{live_server}/upload"],
            capture_output=True, text=True, timeout=60,
        ).stdout  # fmt: skip
        assert out == "202"
    job_ids = [j for (j,) in _jobs_of(name)]
    for job_id in job_ids:
        wait_job(client, job_id)
    after = scrape(live_server)
    name_ = "calserv_http_request_duration_seconds"
    count = name_ + "_count"
    upload = {"endpoint": "uploads.upload", "code": "202"}
    assert (
        _value(after[name_], count, **upload) - _value(before.get(name_, []), count, **upload)
        == uploads
    )
    for _ in range(20):  # other tests' jobs may still be ending: compare a quiet moment
        truth, ended = _job_counts()
        after = scrape(live_server)
        if _job_counts() == (truth, ended):
            break
        time.sleep(0.5)
    for state, n in truth.items():
        if state.value in ("queued", "running"):
            assert (
                _value(
                    after["calserv_jobs_in_progress"], "calserv_jobs_in_progress", state=state.value
                )
                == n
            )
        else:
            finished = after["calserv_jobs_finished"]
            assert _value(finished, "calserv_jobs_finished_total", outcome=state.value) == n
    assert _value(after["calserv_jobs_created"], "calserv_jobs_created_total") == sum(
        truth.values()
    )
    processing = after["calserv_job_processing_seconds"]
    ran = _value(processing, "calserv_job_processing_seconds_count", outcome="succeeded")
    assert ran >= uploads  # ours at least; every succeeded job started
    assert _value(processing, "calserv_job_processing_seconds_bucket", le="+Inf") == _value(
        processing, "calserv_job_processing_seconds_count"
    )
    latency = after["calserv_job_latency_seconds"]
    finished = _value(latency, "calserv_job_latency_seconds_count")
    assert finished == ended  # every job with an end time (fixtures' rows may have none)
    assert _value(latency, "calserv_job_latency_seconds_bucket", le="+Inf") == finished
    assert "calserv_queue_length" in after


def _job_counts() -> tuple[dict, int]:
    with session_scope() as s:
        by_state = dict(s.execute(select(Job.state, func.count()).group_by(Job.state)).all())
        ended = s.scalar(select(func.count()).where(Job.finished_at.is_not(None)))
    return by_state, ended


def _jobs_of(alert: str):
    with session_scope() as s:
        return s.execute(select(Job.id).join(Alert).where(Alert.name == alert)).all()
