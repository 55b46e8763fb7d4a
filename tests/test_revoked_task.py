"""A task revoked in Flower (or otherwise discarded) does not strand its job: the sweeper sends
it again under a new task id, and a real worker runs it."""

from __future__ import annotations

import functools
import io
import secrets
import time
import uuid
from datetime import timedelta

import pytest

from tests.helpers import DATA, WorkerProcess, add_alert, wait_job
from workers.celery_app import app as celery_app

FRAME = (DATA / "gaia-demo" / "frame.cat").read_bytes()
QUEUE = f"calserv-revoke-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def revoke_worker(database, redis_client, refstore):
    w = WorkerProcess("revoke", env={"CALSERV_QUEUE": QUEUE})
    yield w
    w.stop()


@pytest.fixture()
def to_revoke_queue(monkeypatch):
    from db import dispatch

    send_task = dispatch.celery_app.send_task
    monkeypatch.setattr(dispatch.celery_app, "send_task", functools.partial(send_task, queue=QUEUE))


def wait_for_log(worker: WorkerProcess, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text.encode() not in worker.log.read_bytes():
        assert time.monotonic() < deadline, f"worker never logged {text!r}"
        time.sleep(0.2)


def test_revoked_task_is_resent_under_a_new_id(
    app, client, revoke_worker, to_revoke_queue, observatory, monkeypatch
):
    add_alert(app, "ivo://revoke/1", "RevokeAlert", 120.0, 43.5)
    # Revoke the job's first task before it is sent (as Flower would while it waits in the queue):
    # the job's id is fixed in advance so that its task id is known.
    job_id = uuid.uuid4().hex
    monkeypatch.setattr("db.jobs.uuid.uuid4", lambda: uuid.UUID(job_id))
    celery_app.control.revoke(f"{job_id}-0", reply=True, timeout=5)
    form = {
        "hashtag": observatory["hashtag"],
        "EventID": "RevokeAlert",
        "dryRun": "1",
        "noPlot": "1",
        "outputFormat": "json",
        "sexCat": (io.BytesIO(FRAME), "frame.cat"),
    }
    resp = client.post("/upload", data=form, content_type="multipart/form-data")
    assert resp.status_code == 202 and resp.get_json()["job_id"] == job_id
    wait_for_log(revoke_worker, f"Discarding revoked task: calserv.calibrate_job[{job_id}-0]")
    assert client.get(f"/jobs/{job_id}?outputFormat=json").get_json()["status"] == "queued"

    from db.dispatch import sweep
    from tests.test_reliability import backdate

    backdate(job_id, 60, column="enqueued_at")  # sent a minute ago, and gone from the queue
    assert job_id in sweep(stale_after=timedelta(minutes=10))
    job = wait_job(client, job_id, timeout=60)
    assert job["status"] == "succeeded", job
