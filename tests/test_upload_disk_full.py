"""A full upload disk: 507 with Retry-After as JSON, nothing half-written, no job row; tested on
a real 1 MB tmpfs (the tests run as root; without the privilege the test is skipped)."""

from __future__ import annotations

import io
import subprocess

import pytest
from sqlalchemy import func, select

from blobstore import open_store
from db.models import Job
from db.session import session_scope
from tests.helpers import DATA, add_alert

FRAME = (DATA / "gaia-demo" / "frame.cat").read_bytes()


@pytest.fixture()
def tiny_disk(tmp_path):
    mount = tmp_path / "uploads"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)])
    if done.returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_is_507_and_leaves_nothing(app, observatory, tiny_disk, monkeypatch):
    add_alert(app, "ivo://disk/1", "DiskAlert", 120.0, 43.5)
    monkeypatch.setitem(app.extensions, "blobstore", open_store(str(tiny_disk)))
    big = FRAME * 4  # 1.5 MB: more than the disk holds
    with session_scope() as s:
        jobs_before = s.scalar(select(func.count()).select_from(Job))
    form = {
        "hashtag": observatory["hashtag"],
        "EventID": "DiskAlert",
        "MJD": "60000",
        "outputFormat": "json",
        "sexCat": (io.BytesIO(big), "frame.cat"),
    }
    resp = app.test_client().post("/upload", data=form, content_type="multipart/form-data")
    assert resp.status_code == 507, resp.get_data(as_text=True)
    assert resp.is_json and "disk is full" in resp.get_json()["error"]
    assert int(resp.headers["Retry-After"]) > 0
    assert [p.name for p in tiny_disk.rglob("*")] == []  # no partial file
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == jobs_before

    form["sexCat"] = (io.BytesIO(FRAME), "frame.cat")  # a frame that fits is stored as usual
    resp = app.test_client().post("/upload", data=form, content_type="multipart/form-data")
    assert resp.status_code in (200, 202), resp.get_data(as_text=True)
