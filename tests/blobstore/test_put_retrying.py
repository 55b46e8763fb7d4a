"""A store briefly away (an S3-compatible server down, then back) loses no write: `put_retrying`
waits it out with backoff; a store that stays away raises after the last try."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import boto3
import pytest

from blobstore import StoreUnavailable, open_store
from tests.helpers import TMP, MotoServer, free_port


@pytest.fixture()
def credentials(monkeypatch):
    for name, value in MotoServer.CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def start_s3_later(port: int, delay_s: float, started: list) -> None:
    """moto's S3 server on `port` after `delay_s`, with the bucket made (a store back up)."""
    time.sleep(delay_s)
    log = (TMP / "moto-retry.log").open("wb")
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    started.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1"
    ).create_bucket(Bucket="retry")


def test_a_put_waits_out_an_s3_outage(credentials):
    TMP.mkdir(parents=True, exist_ok=True)
    port = free_port()
    store = open_store("s3://retry/calserv", f"http://127.0.0.1:{port}")
    started: list[subprocess.Popen] = []
    later = threading.Thread(target=start_s3_later, args=(port, 1.0, started))
    later.start()
    try:
        store.put_retrying("plots/job.png", b"\x89PNG after the outage", waits_s=(1, 2, 4, 8))
        with store.open("plots/job.png") as f:
            assert f.read() == b"\x89PNG after the outage"
    finally:
        later.join()
        for proc in started:
            proc.terminate()
            proc.wait(timeout=10)


def test_a_store_that_stays_away_raises_after_the_last_try(credentials):
    store = open_store("s3://retry/calserv", f"http://127.0.0.1:{free_port()}")
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.put_retrying("plots/job.png", b"png", waits_s=(0.2, 0.4))
    assert time.monotonic() - t0 >= 0.6  # it did wait between its tries
