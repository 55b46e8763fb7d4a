"""Slow clients cannot stall the service: behind `make run`'s front end (nginx, deploy/nginx.sh,
with gunicorn on a Unix socket as deploy/supervisord.conf starts it), 50 slowloris connections
and 10 slow upload bodies leave /healthz answering in under a second. (Without the front end,
gunicorn's threads are held by them and /healthz times out: bench/bench_slow_clients.py.)"""

from __future__ import annotations

import shutil
import time

import pytest

from tests.helpers import TMP, free_port
from tests.slow_clients import SlowClients, probe, start_front_end, stop

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx (deploy/bootstrap.sh)")


@pytest.fixture()
def front_end(database):
    var = TMP / "slow-clients"
    port = free_port()
    procs = start_front_end(var, port)
    yield port
    stop(procs)


def test_slowloris_and_slow_bodies_leave_healthz_fast(front_end):
    url = f"http://127.0.0.1:{front_end}/healthz"
    with SlowClients("127.0.0.1", front_end, headers=50, bodies=10) as attack:
        time.sleep(2)  # every connection open and sending
        latencies = probe(url, seconds=12)
        assert attack.connects >= 60
    assert len(latencies) >= 10
    assert max(latencies) < 1.0, latencies
