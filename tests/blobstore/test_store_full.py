"""A full local store: StoreFull and nothing half-written left, on a real tmpfs (the web tier's
507 on top of it: tests/test_upload_disk_full.py)."""

from __future__ import annotations

import os
import subprocess

import pytest

from blobstore import StoreFull, open_store


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
