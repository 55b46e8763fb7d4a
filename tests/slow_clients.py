"""Slow clients against the web front end, as tests/test_slow_clients.py and
bench/bench_slow_clients.py send them: slowloris (a request's headers sent one line a second, never
finished) and slow bodies (an upload sent ten bytes a second), each reconnecting when the server
closes it, while /healthz is asked twice a second."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HEADER_HEAD = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
BODY_HEAD = (
    b"POST /upload HTTP/1.1\r\nHost: localhost\r\n"
    b"Content-Type: multipart/form-data; boundary=calserv\r\nContent-Length: 1000000\r\n\r\n"
)


class SlowClients:
    """`headers` slowloris connections and `bodies` slow uploads to host:port while in use."""

    def __init__(self, host: str, port: int, headers: int = 50, bodies: int = 10):
        self.address, self.stop = (host, port), threading.Event()
        self.connects = 0
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(first, every), daemon=True)
            for first, every in [
                (b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n", b"X-Slow: 1\r\n")
            ]
            * headers
            + [(BODY_HEAD, b"x" * 10)] * bodies
        ]

    def _run(self, first: bytes, every: bytes) -> None:
        while not self.stop.is_set():
            try:
                with socket.create_connection(self.address, timeout=5) as s:
                    with self._lock:
                        self.connects += 1
                    s.sendall(first)
                    while not self.stop.wait(1.0):
                        s.sendall(every)
            except OSError:  # closed by the server (its timeout): come back, as an attacker would
                self.stop.wait(0.2)

    def __enter__(self) -> SlowClients:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)


def probe(url: str, seconds: float, every_s: float = 0.5, timeout_s: float = 5.0) -> list[float]:
    """The latency of `GET url` every `every_s` for `seconds`; a failure or timeout counts as
    `timeout_s`."""
    latencies = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as r:
                r.read()
            latencies.append(time.monotonic() - t0)
        except OSError:
            latencies.append(timeout_s)
        time.sleep(max(0.0, every_s - (time.monotonic() - t0)))
    return latencies


def start_front_end(var, port: int, workers: int = 2) -> list[subprocess.Popen]:
    """gunicorn on a Unix socket and nginx in front of it, as `make run` runs them."""
    (var / "run" / "web").mkdir(parents=True, exist_ok=True, mode=0o700)
    env = {
        **os.environ,
        "CALSERV_VAR_DIR": str(var),
        "WEB_PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "CALSERV_BEHIND_PROXY": "1",
    }
    log = (var / "front-end.log").open("ab")
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"]
    gunicorn += ["--bind", f"unix:{var}/run/web/web.sock", "--no-control-socket"]
    procs = [
        subprocess.Popen(
            [*gunicorn, "web:create_app()"], cwd=ROOT, env=env, stdout=log, stderr=log
        ),
        subprocess.Popen(["deploy/nginx.sh"], cwd=ROOT, env=env, stdout=log, stderr=log),
    ]
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return procs
        except OSError:
            pass
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            stop(procs)
            raise RuntimeError((var / "front-end.log").read_text()[-3000:])
        time.sleep(0.3)


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGQUIT if p is procs[-1] else signal.SIGTERM)
    for p in procs:
        p.wait(timeout=30)
