"""A full file store while a job stores its plot never costs the point: the write is retried with
backoff and lands once space is back; if the store stays full, the job succeeds without the plot
and says so in `warnings`. On a real 1 MB tmpfs, with a real worker (the tests run as root;
without the privilege the test is skipped)."""

from __future__ import annotations

import errno
import functools
import io
import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from blobstore import open_store
from tests.helpers import DATA, WorkerProcess, add_alert, wait_job
from tests.test_reliability import followups

FRAME = (DATA / "gaia-demo" / "frame.cat").read_bytes()
QUEUE = f"calserv-full-{secrets.token_hex(3)}"


@pytest.fixture()
def tiny_store(tmp_path, app, refstore, monkeypatch):
    """The web tier and a worker of its own sharing a 1 MB tmpfs as their file store."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "store"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    from db import dispatch

    monkeypatch.setitem(app.extensions, "blobstore", open_store(str(disk)))
    send_task = dispatch.celery_app.send_task
    monkeypatch.setattr(dispatch.celery_app, "send_task", functools.partial(send_task, queue=QUEUE))
    worker = None
    try:
        worker = WorkerProcess(
            "full-store", env={"CALSERV_QUEUE": QUEUE, "CALSERV_STORAGE_URL": str(disk)}
        )
        yield disk, worker
    finally:
        if worker is not None:
            worker.stop()
        subprocess.run(["umount", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte with a ballast file."""
    ballast = disk / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return ballast


def upload(client, hashtag: str, mjd: str) -> str:
    form = {
        "hashtag": hashtag,
        "EventID": "FullStoreAlert",
        "MJD": mjd,
        "outputFormat": "json",
        "sexCat": (io.BytesIO(FRAME), "frame.cat"),
    }
    resp = client.post("/upload", data=form, content_type="multipart/form-data")
    assert resp.status_code == 202, resp.get_data(as_text=True)
    return resp.get_json()["job_id"]


def wait_log(worker: WorkerProcess, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text.encode() not in worker.log.read_bytes():
        assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
        time.sleep(0.1)


def test_a_full_store_delays_or_drops_the_plot_never_the_point(
    app, client, observatory, tiny_store
):
    disk, worker = tiny_store
    add_alert(app, "ivo://full/1", "FullStoreAlert", 120.0, 45.0)  # the demo frame's target

    # Full while the plot is written, freed during the retries: the plot lands.
    worker.stop()
    first = upload(client, observatory["hashtag"], "60100.5")
    ballast = fill(disk)
    worker.start()
    wait_log(worker, f"event=store_put_retry key=plots/{first}.png")
    ballast.unlink()
    job = wait_job(client, first, timeout=90)
    assert job["status"] == "succeeded", job
    assert job["image_link"] and not any("could not be stored" in w for w in job["warnings"]), job
    assert (disk / "plots" / f"{first}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert followups(first) == 1

    # Full for longer than the retries: the point is kept, without its plot, and says why.
    worker.stop()
    second = upload(client, observatory["hashtag"], "60101.5")
    fill(disk)
    worker.start()
    job = wait_job(client, second, timeout=90)
    assert job["status"] == "succeeded", job
    assert any("calibration plot could not be stored" in w for w in job["warnings"]), job
    assert not (disk / "plots" / f"{second}.png").exists()
    assert job["image_link"] is None and job["mag"] == pytest.approx(9.5, abs=0.1)
    assert followups(second) == 1
    assert b"internal error" not in worker.log.read_bytes()
