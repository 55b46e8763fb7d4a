"""Readers cannot stall the web tier: under the production gunicorn settings
(deploy/gunicorn.conf.py), `/healthz` answers within a second while 16 clients fetch an alert's
light-curve plot (805 points) and while 8 uploads wait (`wait=60`) for jobs no worker runs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import urllib3
from sqlalchemy import insert

from db.models import Alert, Followup, Job, JobState, Observatory, Upload
from db.session import session_scope
from tests.helpers import DATA, ROOT, TMP, free_port

FRAME = (DATA / "gaia-demo" / "frame.cat").read_bytes()
POINTS = 805
HEALTHZ_LIMIT_S = 1.0
HTTP = urllib3.PoolManager(maxsize=32, retries=False)


@pytest.fixture(scope="module")
def prod_server(database):
    """gunicorn as production runs it; its tasks go to a queue no worker reads (jobs stay
    queued, so `wait=` holds the request for its whole time)."""
    port = free_port()
    env = {
        **os.environ,
        "CALSERV_QUEUE": f"nobody-{secrets.token_hex(3)}",
        "CALSERV_VAR_DIR": str(TMP / "stall-var"),
    }
    TMP.mkdir(parents=True, exist_ok=True)
    log = (TMP / "gunicorn-stall.log").open("wb")
    conf = str(ROOT / "deploy" / "gunicorn.conf.py")
    cmd = [sys.executable, "-m", "gunicorn", "-c", conf, "--bind", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [*cmd, "web:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
        time.sleep(0.2)
    yield url
    proc.kill()  # waiting requests would hold a graceful stop for their whole wait
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def busy_alert(database) -> str:
    """An alert with 805 follow-up points (a long-observed transient)."""
    name = f"Stall{secrets.token_hex(3)}"
    with session_scope() as s:
        obs = Observatory(name=f"Stall obs {name}", lon=1, lat=2, filters=["V"])
        obs.key_prefix, obs.key_salt, obs.key_hash = "x", "x", secrets.token_hex(32)
        alert = Alert(ivorn=f"ivo://stall/{name}", name=name, ra=10.0, dec=20.0)
        s.add_all([obs, alert])
        s.flush()
        for i in range(POINTS):
            sha = hashlib.sha256(f"{name}-{i}".encode()).hexdigest()
            up = s.execute(
                insert(Upload).returning(Upload.id), {"sha256": sha, "size": 1, "path": "/x"}
            ).scalar_one()
            job_id = sha[:32]
            s.execute(
                insert(Job),
                {
                    "id": job_id,
                    "idempotency_key": sha,
                    "observatory_id": obs.id,
                    "alert_id": alert.id,
                    "upload_id": up,
                    "params": {},
                    "state": JobState.succeeded,
                },
            )
            s.execute(
                insert(Followup),
                {
                    "job_id": job_id,
                    "alert_id": alert.id,
                    "observatory_id": obs.id,
                    "mjd": 59000.0 + i,
                    "survey": "APASS",
                    "filter": "V",
                    "mag": 15.0 + (i % 50) / 100,
                    "mag_err": 0.02,
                    "is_limit": False,
                    "zeropoint": 22.0,
                    "zeropoint_err": 0.01,
                    "npoints": 40,
                },
            )
    return name


def healthz_times(url: str, n: int = 10) -> list[float]:
    """Latencies of `n` health checks; stops at the first one over the limit (a stalled web
    tier would otherwise keep the test waiting)."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        with contextlib.suppress(urllib3.exceptions.TimeoutError):  # counted as its 5 s
            assert HTTP.request("GET", f"{url}/healthz", timeout=5).status == 200
        times.append(time.perf_counter() - t0)
        if times[-1] >= HEALTHZ_LIMIT_S:
            break
        time.sleep(0.2)
    return times


def test_healthz_fast_while_16_clients_fetch_light_curves(prod_server, busy_alert):
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            HTTP.request("GET", f"{prod_server}/alerts/{busy_alert}/lightcurve.png", timeout=120)

    with ThreadPoolExecutor(16) as pool:
        for _ in range(16):
            pool.submit(reader)
        time.sleep(2)  # every worker thread is busy with readers by now
        try:
            times = healthz_times(prod_server)
        finally:
            stop.set()
    assert max(times) < HEALTHZ_LIMIT_S, times


def test_healthz_fast_while_8_uploads_wait(prod_server, observatory, app):
    from tests.helpers import add_alert

    add_alert(app, "ivo://stall/wait", "StallWait", 10.0, 20.0)

    def waiter(i: int) -> int:
        form = {
            "hashtag": observatory["hashtag"],
            "EventID": "StallWait",
            "MJD": f"{60000 + i}",  # eight observations (a comment alone would be the same job)
            "wait": "60",
            "comment": f"waiter {i} {secrets.token_hex(3)}",
            "outputFormat": "json",
        }
        form["sexCat"] = ("frame.cat", FRAME)
        return HTTP.request("POST", f"{prod_server}/upload", fields=form, timeout=120).status

    pool = ThreadPoolExecutor(8)
    try:
        waits = [pool.submit(waiter, i) for i in range(8)]
        time.sleep(2)
        times = healthz_times(prod_server, n=5)
        assert max(times) < HEALTHZ_LIMIT_S, times
        assert all(w.result() in (200, 202) for w in waits)
    finally:
        pool.shutdown(wait=False)  # a stalled server's waiters end when it is stopped
