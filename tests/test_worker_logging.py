"""Worker log lines name their job through a logging filter, not by hand in each message."""

from __future__ import annotations

import io
import logging
import re
import time

from tests.helpers import DATA, add_alert, wait_job
from workers.job_log import FORMAT, JobIdFilter, job_context


def test_the_filter_names_the_running_job_and_only_inside_it():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(JobIdFilter())
    handler.setFormatter(logging.Formatter("job=%(job)s %(name)s: %(message)s"))
    log = logging.getLogger("calserv.test.joblog")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("before")
        with job_context("abc123"):
            logging.getLogger("calserv.test.joblog.child").warning("inside")  # a library's
        log.warning("after")
    finally:
        log.removeHandler(handler)
    assert out.getvalue().splitlines() == [
        "job=- calserv.test.joblog: before",
        "job=abc123 calserv.test.joblog.child: inside",
        "job=- calserv.test.joblog: after",
    ]
    assert "job=%(job)s" in FORMAT


def test_a_real_worker_logs_the_job_id_on_its_lines(app, client, worker, observatory):
    frame = DATA / "gaia-demo" / "frame.cat"
    add_alert(app, "ivo://logging/gaia", "LoggingGaia", 0.0, 0.0)
    seen = worker.log.stat().st_size
    resp = client.post(
        "/upload",
        data={
            "EventID": "ivo://logging/gaia",
            "hashtag": observatory["hashtag"],
            "MJD": "60000",
            "dryRun": "1",
            "noPlot": "1",
            "outputFormat": "json",
            "sexCat": (frame.open("rb"), "frame.cat"),
        },
        content_type="multipart/form-data",
    )
    job_id = resp.get_json()["job_id"]
    wait_job(client, job_id)
    deadline = time.monotonic() + 10  # the worker logs the outcome just after committing it
    while True:
        lines = worker.log.read_text()[seen:].splitlines()
        events = [line for line in lines if "event=job_" in line]  # other tests' jobs too
        mine = [line for line in events if f"job={job_id} event=" in line]
        if any(re.search(r"event=job_(succeeded|failed)", line) for line in mine):
            break
        assert time.monotonic() < deadline, lines
        time.sleep(0.1)
    assert any("event=job_started" in line for line in mine), lines
    assert all(re.search(r"\] job=[0-9a-f]{32} event=job_", line) for line in events), events
    assert not any(re.search(r"event=job_.* job=", line) for line in events)  # not by hand
