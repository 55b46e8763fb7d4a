"""The service's own CPU per job outside the calibration, web tier and worker, in one process.

    .venv/bin/python bench/bench_jobcost.py                 # 200 distinct demo frames
    .venv/bin/python bench/bench_jobcost.py --profile 25    # and the top 25 functions of each tier

`bench/bench_batch.py` measures whole processes under a real client, where the host's other load
and Celery's pool blur the per-job figures; this one drives the same code paths without HTTP or a
pool, so that a change to the code around the calibration shows as milliseconds of CPU:

1. web tier: N ``POST /upload`` (the batch client's form: key, alert, ``dryRun=1``, ``noPlot=1``,
   a distinct 2.7k-source frame each) through the Flask app's test client: multipart parsing,
   authentication, rate limit, the fsync'd store, the INSERTs and the Celery publish;
2. worker: the N jobs run by ``workers.tasks.calibrate_job`` as a Celery worker calls it (the task
   object, in this process), the calibration's own CPU (``workers.calibration._calibrate``)
   measured apart.

CPU is ``time.process_time`` (this process only: Postgres's and Redis's share is not in it). The
queue and the database are the run's own and are dropped at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))

from bench_batch import make_frames  # noqa: E402


def _env(tmp: Path, db_name: str) -> dict[str, str]:
    os.environ.setdefault("CALSERV_ENV", "development")
    from config import settings

    base = settings()
    refcats = base.refcat_dir if (base.refcat_dir / "GaiaDR3").is_dir() else tmp / "refcats"
    return {
        "CALSERV_DATABASE_URL": base.database_url.rsplit("/", 1)[0] + "/" + db_name,
        "CALSERV_QUEUE": f"calserv-jobcost-{os.getpid()}",
        "CALSERV_UPLOAD_DIR": str(tmp / "uploads"),
        "CALSERV_PLOT_DIR": str(tmp / "plots"),
        "CALSERV_REFCAT_DIR": str(refcats),
        "CALSERV_RATE_LIMIT": "1000000 per minute",
        "CALSERV_ENV": "development",
    }


def _run(cmd: list[str], env: dict[str, str]) -> str:
    return subprocess.run(
        cmd, cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True, text=True
    ).stdout


def _setup(env: dict[str, str], base_url: str, db_name: str) -> tuple[str, str]:
    from sqlalchemy import create_engine, text

    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {db_name}"))
    admin.dispose()
    py = sys.executable
    _run([py, "-m", "alembic", "upgrade", "head"], env)
    if not (Path(env["CALSERV_REFCAT_DIR"]) / "GaiaDR3").is_dir():
        flask = [py, "-m", "flask", "--app", "web", "refcat", "build-demo"]
        _run([*flask, "--root", env["CALSERV_REFCAT_DIR"]], env)
    tag = secrets.token_hex(3)
    flask = [py, "-m", "flask", "--app", "web"]
    obs = [*flask, "observatory", "add", f"Cost {tag}", "--lon", "20.5", "--lat", "-32.4"]
    key = _run([*obs, "--filters", "G"], env).strip().splitlines()[-1]
    ivorn = f"ivo://jobcost/{tag}"
    alert = [*flask, "alert", "add", ivorn, "--name", f"Cost{tag}"]
    _run([*alert, "--ra", "120.0", "--dec", "45.0"], env)
    return key, ivorn


def _top(prof: cProfile.Profile, n: int) -> str:
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(n)
    return out.getvalue()


def web_tier(files: list[Path], key: str, ivorn: str, profile: int) -> tuple[float, list[str], str]:
    """CPU ms per upload and the job ids."""
    from web import create_app

    client = create_app().test_client()

    def upload(path: Path) -> str:
        with path.open("rb") as f:
            form = {"hashtag": key, "EventID": ivorn, "dryRun": "1", "noPlot": "1"}
            r = client.post(
                "/upload",
                data={**form, "sexCat": (f, path.name)},
                headers={"Accept": "application/json"},
            )
        assert r.status_code == 202, r.get_data(as_text=True)[:500]
        return r.get_json()["job_id"]

    upload(files[0])  # warm: first request, connections, imports
    prof = cProfile.Profile() if profile else None
    cpu0 = time.process_time()
    if prof:
        prof.enable()
    ids = [upload(f) for f in files[1:]]
    if prof:
        prof.disable()
    return (time.process_time() - cpu0) * 1000 / len(ids), ids, _top(prof, profile) if prof else ""


def worker(ids: list[str], profile: int) -> tuple[float, float, str]:
    """CPU ms per job: the task as Celery calls it, and the calibration's share."""
    from workers import calibration
    from workers.tasks import calibrate_job

    calib_cpu = [0.0]
    inner = calibration._calibrate

    def timed(*args, **kwargs):
        t0 = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            calib_cpu[0] += time.process_time() - t0

    calibration._calibrate = timed
    calibration.warm_up()
    calibrate_job(ids[0])  # warm: connections, first job
    calib_cpu[0] = 0.0
    prof = cProfile.Profile() if profile else None
    cpu0 = time.process_time()
    if prof:
        prof.enable()
    for job_id in ids[1:]:
        assert calibrate_job(job_id) == "succeeded"
    if prof:
        prof.disable()
    n = len(ids) - 1
    total = (time.process_time() - cpu0) * 1000 / n
    return total, calib_cpu[0] * 1000 / n, _top(prof, profile) if prof else ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200, help="frames (default 200)")
    p.add_argument("--profile", type=int, default=0, help="print the top N functions by tottime")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="calserv-jobcost-"))
    db_name = f"calserv_jobcost_{os.getpid()}"
    env = _env(tmp, db_name)
    from config import settings

    base_url = settings().database_url
    try:
        key, ivorn = _setup(env, base_url, db_name)
        os.environ.update(env)
        settings.cache_clear()
        files = sorted(make_frames(tmp, "2.7k", args.n + 1, 2690, 0).iterdir())
        web_ms, ids, web_prof = web_tier(files, key, ivorn, args.profile)
        work_ms, calib_ms, work_prof = worker(ids, args.profile)
    finally:
        _drop(env, base_url, db_name)
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    if web_prof:
        print("## web tier, per upload\n", web_prof)
        print("## worker, per job\n", work_prof)
    print(f"{args.n} frames of 2.7k sources, CPU of this process (ms per job)\n")
    print("| web tier per upload | worker per job | of which calibration | worker outside it |")
    print("|---|---|---|---|")
    print(f"| {web_ms:.2f} | {work_ms:.2f} | {calib_ms:.2f} | {work_ms - calib_ms:.2f} |")
    return 0


def _drop(env: dict[str, str], base_url: str, db_name: str) -> None:
    import redis
    from sqlalchemy import create_engine, text

    from db.session import _engine

    for eng in [_engine(env["CALSERV_DATABASE_URL"], a) for a in (False, True)]:
        eng.dispose()
    redis.Redis.from_url(settings_redis()).delete(env["CALSERV_QUEUE"])
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
    admin.dispose()


def settings_redis() -> str:
    from config import settings

    return settings().redis_url


if __name__ == "__main__":
    sys.exit(main())
