"""What a light-curve reader costs the web tier: rendering once per change, then cache and 304.

    .venv/bin/python bench/bench_lightcurve.py              # 200 points (make services first)
    .venv/bin/python bench/bench_lightcurve.py --points 50 --repeat 20

Makes a fresh database ``calserv_bench_lc_<pid>`` on the local PostgreSQL (``make services``),
migrated with Alembic, with one alert of ``--points`` follow-up points from three observatories
(one in ten an upper limit), then times requests through the app in-process (Flask's test client:
the app's own CPU and database time, no network): the PNG rendered cold, the PNG from the file
cache, a revalidation answered 304, the Bokeh JSON, and `/healthz` as the floor a reader is
compared with. Prints a table (median ms, and the ratio to /healthz); the database is dropped at
the end. Plots go to a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _setup_env(tmp: Path) -> tuple[str, str]:
    port = os.environ.get("CALSERV_PG_PORT", "5433")
    base = os.environ.get(
        "CALSERV_DATABASE_URL", f"postgresql+psycopg2://calserv@127.0.0.1:{port}/calserv"
    )
    name = f"calserv_bench_lc_{os.getpid()}"
    os.environ["CALSERV_DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + name
    os.environ["CALSERV_STORAGE_URL"] = str(tmp / "store")
    os.environ.setdefault("CALSERV_SECRET_KEY", "bench")
    os.environ.setdefault("CALSERV_HASHTAG_PEPPER", "bench")
    return base, name


def _timed(fn, repeat: int) -> tuple[float, object]:
    times, last = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        last = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="calserv-bench-lc-"))
    base, dbname = _setup_env(tmp)

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {dbname}"))
    try:
        command.upgrade(Config(str(ROOT / "alembic.ini")), "head")
        rows = _measure(args.points, args.repeat)
    finally:
        from db.session import engine

        engine().dispose()
        engine(autocommit=True).dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"))
    floor = rows[-1][1]
    print(f"\nlight curve of {args.points} points, median of {args.repeat} requests (in-process)\n")
    print(f"| {'request':<44} | {'ms':>8} | {'x /healthz':>10} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 12}|")
    for what, ms in rows:
        print(f"| {what:<44} | {ms:8.2f} | {ms / floor:10.1f} |")


def _measure(npoints: int, repeat: int) -> list[tuple[str, float]]:
    import hashlib

    from db.models import Alert, Followup, Job, JobState, Observatory, Upload
    from db.session import session_scope
    from web import create_app, keys

    app = create_app(overrides={"TESTING": True})
    with app.app_context(), session_scope() as s:
        alert = Alert(ivorn="ivo://bench/lc", name="BenchLC", ra=120.0, dec=45.0)
        s.add(alert)
        sites = []
        for i in range(3):
            o = Observatory(name=f"Bench site {i}", lon=0.0, lat=0.0, filters=["V", "R"])
            keys.set_key(o)
            s.add(o)
            sites.append(o)
        s.flush()
        for i in range(npoints):
            sha = hashlib.sha256(str(i).encode()).hexdigest()
            up = Upload(sha256=sha, size=1, original_name="f.cat", path="/nonexistent")
            s.add(up)
            s.flush()
            o = sites[i % 3]
            job = Job(
                idempotency_key=sha,
                observatory_id=o.id,
                alert_id=alert.id,
                upload_id=up.id,
                params={"mjd": 60000.0 + i},
                state=JobState.succeeded,
            )
            s.add(job)
            s.flush()
            limit = i % 10 == 9
            s.add(
                Followup(
                    job_id=job.id,
                    alert_id=alert.id,
                    observatory_id=o.id,
                    mjd=60000.0 + i,
                    survey="APASS",
                    filter="VRG"[i % 3],
                    mag=15.0 + (i % 17) * 0.1 + (3 if limit else 0),
                    mag_err=-1.0 if limit else 0.05,
                    is_limit=limit,
                    zeropoint=22.0,
                    zeropoint_err=0.02,
                    npoints=40,
                )
            )
    client = app.test_client()
    png = "/alerts/BenchLC/lightcurve.png"
    bokeh_json = "/alerts/BenchLC/lightcurve.bokeh.json"
    client.get(png)  # imports and first-use costs, not measured
    client.get("/healthz")

    store = app.extensions["blobstore"]  # the rendered curves are cached in the file store

    def drop_cached(suffix: str) -> None:
        for key in store.list("lightcurves/"):
            if key.endswith(suffix):
                store.delete(key)

    def cold_png():
        drop_cached(".png")
        return client.get(png)

    cold, _ = _timed(cold_png, max(3, repeat // 5))
    warm, resp = _timed(lambda: client.get(png), repeat)
    etag = resp.headers["ETag"]
    not_modified, r304 = _timed(lambda: client.get(png, headers={"If-None-Match": etag}), repeat)
    assert r304.status_code == 304

    def cold_bokeh():
        drop_cached(".json")
        return client.get(bokeh_json)

    bokeh_ms, rb = _timed(cold_bokeh, max(3, repeat // 5))
    bokeh_warm, _ = _timed(lambda: client.get(bokeh_json), repeat)
    etag_b = rb.headers["ETag"]
    bokeh_304, _ = _timed(lambda: client.get(bokeh_json, headers={"If-None-Match": etag_b}), repeat)
    page, _ = _timed(lambda: client.get("/alerts/BenchLC"), repeat)
    health, _ = _timed(lambda: client.get("/healthz"), repeat)
    return [
        ("PNG, rendered (cache empty)", cold),
        ("PNG, from the file cache", warm),
        ("PNG, revalidated (If-None-Match: 304)", not_modified),
        ("Bokeh json_item, built (cache empty)", bokeh_ms),
        ("Bokeh json_item, from the file cache", bokeh_warm),
        ("Bokeh json_item, revalidated (304)", bokeh_304),
        ("alert page (HTML with the points table)", page),
        ("/healthz (floor)", health),
    ]


if __name__ == "__main__":
    main()
