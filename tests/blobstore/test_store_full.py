"""A full local store: StoreFull, nothing half-written left, and a 507 to the uploader (tmpfs)."""

from __future__ import annotations

import io
import os
import subprocess

import pytest

from blobstore import StoreFull, open_store
from config import Settings
from tests.helpers import DATA, add_alert

FRAME = (DATA / "gaia-demo" / "frame.cat").read_bytes()


@pytest.fixture()
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs: a real filesystem that fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)])
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_raises_store_full_and_leaves_nothing(tiny_disk):
    store = open_store(str(tiny_disk))
    store.put("plots/small.png", b"x" * 1000)
    with pytest.raises(StoreFull), store.writer() as w:
        for _ in range(64):
            w.write(os.urandom(16 * 1024))  # 1 MiB in all
        w.commit("uploads/ab/big.cat")
    assert sorted(os.listdir(tiny_disk)) == ["plots"]  # no temporary file, no partial object
    with store.open("plots/small.png") as f:
        assert f.read() == b"x" * 1000  # what was there is intact


def test_an_upload_to_a_full_disk_is_507(app, observatory, tiny_disk):
    from web import create_app

    add_alert(app, "ivo://full/1", "FullDiskAlert", 120.0, 45.0)
    (tiny_disk / "filler").write_bytes(b"\0" * (256 * 1024 - 64 * 1024))  # room for < 1 frame
    full = Settings.load(env="development", storage_url=str(tiny_disk))
    client = create_app(full, overrides={"TESTING": True}).test_client()
    resp = client.post(
        "/upload",
        data={
            "hashtag": observatory["hashtag"],
            "EventID": "ivo://full/1",
            "MJD": "59000.5",
            "outputFormat": "json",
            "sexCat": (io.BytesIO(FRAME), "frame.cat"),
        },
        content_type="multipart/form-data",
    )
    assert resp.status_code == 507, resp.get_data(as_text=True)
    assert resp.get_json()["error"] == "the file store is full"
    assert resp.headers["Retry-After"] == "60"
    assert sorted(os.listdir(tiny_disk)) == ["filler"]
