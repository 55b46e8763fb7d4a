"""Slow clients against the web tier, with and without `make run`'s front end (prints a table;
not a test; loopback only, bounded: 60 connections, SECONDS per arm).

    .venv/bin/python bench/bench_slow_clients.py

50 slowloris connections (headers one line a second, never finished) and 10 slow upload bodies
(ten bytes a second), each reconnecting when closed, while /healthz is asked twice a second:

- gunicorn alone (gthread, 2 processes x 2 threads, TCP), as `make run` served before;
- nginx in front of the same gunicorn on a Unix socket (deploy/nginx.sh, the embedded default
  and, with the same directives, production: deploy/nginx/calserv-proxy.conf).

A /healthz that fails or takes 5 s counts as 5 s. Needs PostgreSQL and Redis (`make services`).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import Gunicorn, free_port  # noqa: E402
from tests.slow_clients import SlowClients, probe, start_front_end, stop  # noqa: E402

SECONDS = 15
HEADERS, BODIES = 50, 10


def attack(host: str, port: int, url: str) -> tuple[list[float], int]:
    with SlowClients(host, port, headers=HEADERS, bodies=BODIES) as slow:
        time.sleep(2)
        latencies = probe(url, seconds=SECONDS)
        return latencies, slow.connects


def row(name: str, latencies: list[float], connects: int) -> str:
    q = (
        statistics.quantiles(latencies, n=20, method="inclusive")
        if len(latencies) > 1
        else latencies * 19
    )
    slow = sum(t >= 5.0 for t in latencies)
    return (
        f"{name:<34} {statistics.median(latencies):>8.3f} {q[18]:>8.3f} {max(latencies):>8.3f} "
        f"{slow:>3}/{len(latencies):<3} {connects:>9}"
    )


def main() -> None:
    lines = [
        f"{HEADERS} slowloris + {BODIES} slow bodies, /healthz every 0.5 s for {SECONDS} s",
        f"{'front end':<34} {'p50 s':>8} {'p95 s':>8} {'max s':>8} {'>=5s':>7} {'connects':>9}",
    ]
    quiet = Gunicorn(workers=2, name="bench-slow-direct")
    try:
        url = f"{quiet.url}/healthz"
        lines.append(row("none: idle (floor)", probe(url, seconds=3), 0))
        port = int(quiet.url.rsplit(":", 1)[1])
        lines.append(row("none: gunicorn 2x2 threads, TCP", *attack("127.0.0.1", port, url)))
    finally:
        quiet.stop()
    with tempfile.TemporaryDirectory(prefix="calserv-bench-slow-") as d:
        port = free_port()
        procs = start_front_end(Path(d), port)
        try:
            url = f"http://127.0.0.1:{port}/healthz"
            lines.append(row("nginx -> gunicorn: idle (floor)", probe(url, seconds=3), 0))
            lines.append(row("nginx -> gunicorn 2x2 threads", *attack("127.0.0.1", port, url)))
        finally:
            stop(procs)
    table = "\n".join(lines)
    print(table)
    out = ROOT / "bench" / "results" / "slow_clients.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")


if __name__ == "__main__":
    main()
