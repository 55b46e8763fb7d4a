"""A memory and work budget per job, enforced by a real worker while the task runs: a hostile
catalogue fails its job with a reason, and the same worker goes on to calibrate the next one."""

from __future__ import annotations

import functools
import io
import secrets
import zlib

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from calib import CatalogError
from config import settings
from tests.helpers import DATA, WorkerProcess, add_alert, wait_job
from workers.calibration import _reason

FRAME = (DATA / "gaia-demo" / "frame.cat").read_bytes()
HEADER = b"".join(line for line in FRAME.splitlines(True) if line.startswith(b"#"))
ROWS = [line for line in FRAME.splitlines(True) if not line.startswith(b"#")]
BUDGET_MB = 100
QUEUE = f"calserv-budget-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def budget_worker(database, redis_client, refstore):
    """A worker of its own queue with a 100 MB job budget and a 5-degree frame limit."""
    env = {
        "CALSERV_QUEUE": QUEUE,
        "CALSERV_JOB_MEMORY_MB": str(BUDGET_MB),
        "CALSERV_MAX_FRAME_RADIUS_DEG": "5",
    }
    w = WorkerProcess("budget", env=env)
    yield w
    w.stop()


@pytest.fixture()
def to_budget_queue(monkeypatch):
    """Send this test's tasks to the budget worker's queue (the other worker keeps its own)."""
    from db import dispatch

    send_task = dispatch.celery_app.send_task
    monkeypatch.setattr(dispatch.celery_app, "send_task", functools.partial(send_task, queue=QUEUE))


@pytest.fixture(scope="module")
def budget_alert(app) -> str:
    add_alert(app, "ivo://budget/1", "BudgetAlert", 120.0, 43.5)
    return "BudgetAlert"


def upload(client, hashtag: str, data: bytes, comment: str) -> dict:
    """One observation per `comment` (its MJD comes from it: a comment alone is presentation and
    would return the job of the same frame)."""
    form = {
        "hashtag": hashtag,
        "EventID": "BudgetAlert",
        "dryRun": "1",
        "noPlot": "1",
        "comment": comment,
        "MJD": f"{60000 + zlib.crc32(comment.encode()) % 100_000 / 1000:.3f}",
        "outputFormat": "json",
        "sexCat": (io.BytesIO(data), "frame.cat"),
    }
    resp = client.post("/upload", data=form, content_type="multipart/form-data")
    assert resp.status_code == 202, resp.get_data(as_text=True)
    return wait_job(client, resp.get_json()["job_id"], timeout=120)


def shifted(rows: list[bytes], dec: float) -> list[bytes]:
    """The rows with their Dec (column 5) replaced."""
    out = []
    for row in rows:
        cols = row.split()
        cols[4] = f"{dec:+.7f}".encode()
        out.append(b" ".join(cols) + b"\n")
    return out


def assert_worker_lives_on(client, worker, hashtag: str, comment: str) -> None:
    job = upload(client, hashtag, FRAME, comment)
    assert job["status"] == "succeeded", job["error"]
    assert worker.proc.poll() is None
    assert b"WorkerLostError" not in worker.log.read_bytes()


def test_over_budget_job_fails_with_a_reason_and_the_worker_lives_on(
    client, budget_worker, to_budget_queue, observatory, budget_alert
):
    hostile = HEADER + b"".join(ROWS) * (24_000_000 // len(b"".join(ROWS)))
    job = upload(client, observatory["hashtag"], hostile, "over budget")
    assert job["status"] == "failed", job
    assert f"more than the {BUDGET_MB} MB of memory" in job["error"], job
    assert_worker_lives_on(client, budget_worker, observatory["hashtag"], "after budget")


def test_whole_sky_frame_is_refused_before_reading_the_survey(
    client, budget_worker, to_budget_queue, observatory, budget_alert
):
    poles = HEADER + b"".join(ROWS[:50]) + b"".join(shifted(ROWS[50:51], 89.9))
    poles += b"".join(shifted(ROWS[51:52], -89.9))
    job = upload(client, observatory["hashtag"], poles, "poles")
    assert job["status"] == "failed", job
    assert "more than the 5 degrees calserv calibrates" in job["error"], job
    assert_worker_lives_on(client, budget_worker, observatory["hashtag"], "after poles")


def test_time_limit_reads_as_a_time_limit():
    try:
        try:
            raise SoftTimeLimitExceeded()
        except SoftTimeLimitExceeded as exc:
            raise CatalogError("catalogue could not be read", detail=repr(exc)) from exc
    except CatalogError as e:
        error, _ = _reason(e, settings())
    assert error == f"calibration took longer than {settings().task_soft_time_limit} s"


def test_out_of_range_position_is_a_named_failure(
    client, budget_worker, to_budget_queue, observatory, budget_alert
):
    bad = HEADER + b"".join(ROWS[:50]) + b"".join(shifted(ROWS[50:51], 100.0))
    job = upload(client, observatory["hashtag"], bad, "dec 100")
    assert job["status"] == "failed", job
    assert "internal error" not in (job["error"] or ""), job
