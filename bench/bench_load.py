"""Load test of the whole service on loopback: a burst of uploads through the batch client.

    .venv/bin/python bench/bench_load.py            # 1000 uploads (make services first)
    .venv/bin/python bench/bench_load.py --n 100    # quick check
    .venv/bin/python bench/bench_load.py --url http://127.0.0.1:5000 --event Gaia16aye
                                                     # an already running stack (CALSERV_HASHTAG)

Without ``--url`` it starts its own stack against the local PostgreSQL and Redis (``make
services``): a fresh database ``calserv_bench_<pid>`` migrated with Alembic, its own Celery queue,
uploads under a temporary directory, the Gaia demo reference store (the one of ``make demo`` when
present, else built into the temporary directory), gunicorn as `make run` starts it (its settings in
``deploy/gunicorn.conf.py``) and ``--workers`` Celery workers at a low CPU priority
(``deploy/low-priority.sh``, as `make run` does).
Everything it started is stopped and the database dropped at the end.

The burst: ``--n`` uploads of the Gaia demo frame for one alert (distinct observations through a
different ``MJD``, as a comment alone does not make a new job; or ``--distinct-bytes`` to append a
comment line to each catalogue),
dryRun=1, noPlot=1, sent with ``--jobs`` threads through `calserv_client.Client`, then every job
polled until it ends. Every loop is bounded in count and by ``--timeout``; only 127.0.0.1 is
contacted. Prints a table (and writes it with the raw numbers to bench/results/load-*.json):
submitted, accepted, finished, lost (accepted but never finished: must be 0), submit and
status-poll latency, frames/s per worker process, worker RSS (max over /proc samples).

The web tier's cost is CPU milliseconds per request, not latency (latency on a shared 2-core
machine says more about the neighbours than about calserv): the CPU time of gunicorn's processes
(master and workers, from /proc) over the upload burst and over a phase of ``--n`` status polls,
divided by the requests. Beside it, the floor: the same gunicorn settings serving a bare Flask
endpoint that does one Postgres query (bench/floor_app.py), hit by the same threads in the same
run. calserv / floor is the ratio to watch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "client"))

from calserv_client import CalservError, Client, Interrupted, RetryPolicy  # noqa: E402

GAIA = ROOT / "tests" / "data" / "gaia-demo"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
#: Workers run at a lower CPU priority than the web tier, as `make run` runs them.
LOW_PRIORITY = ROOT / "deploy" / "low-priority.sh"
TARGETS = {"worker_rss_mb": 500.0}
LOOPBACK = ("127.0.0.1",)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


# -- processes --------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            kids += [int(x) for x in task.read_text().split()]
    return kids


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(root: int) -> float:
    """User + system CPU time of `root` and every process under it (all their threads)."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        todo += _children(pid)
    return total / os.sysconf("SC_CLK_TCK")


def find_celery_workers() -> list[int]:
    """Main pids of `celery ... worker` processes on this machine (for --url runs)."""
    mains = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"celery" in c for c in cmd) and b"worker" in cmd:
            mains.append(int(d.name))
    return [p for p in mains if not any(p in _children(q) for q in mains)]


class RssSampler(threading.Thread):
    """Samples VmRSS of the worker main processes and their pool children every 0.25 s."""

    def __init__(self, mains: list[int]):
        super().__init__(daemon=True)
        self.mains, self.peak, self.stop = mains, {}, threading.Event()

    def pool(self) -> list[int]:
        return [c for m in self.mains for c in _children(m)] or list(self.mains)

    def run(self) -> None:
        while not self.stop.wait(0.25):
            for pid in self.mains + self.pool():
                rss = _rss_mb(pid)
                if rss is not None:
                    self.peak[pid] = max(self.peak.get(pid, 0.0), rss)


class Stack:
    """Our own web tier + workers on a fresh database and queue; `close` undoes everything."""

    def __init__(self, workers: int, concurrency: int, web_workers: int | None):
        self.procs: list[subprocess.Popen] = []
        self.db_name = f"calserv_bench_{os.getpid()}"
        self._db_created = False
        self.tmp = Path(tempfile.mkdtemp(prefix="calserv-bench-"))
        try:
            self._start(workers, concurrency, web_workers)
        except BaseException:
            self.close()
            raise

    def _start(self, workers: int, concurrency: int, web_workers: int | None) -> None:
        from config import settings

        # A benchmark is a developer's run: the built-in secret key and pepper are fine.
        os.environ.setdefault("CALSERV_ENV", "development")
        base = settings()
        self.base_db = base.database_url
        self.worker_mains: list[int] = []
        refcats = (
            base.refcat_dir if (base.refcat_dir / "GaiaDR3").is_dir() else self.tmp / "refcats"
        )
        self.env = {
            **os.environ,
            "CALSERV_DATABASE_URL": self.base_db.rsplit("/", 1)[0] + "/" + self.db_name,
            "CALSERV_QUEUE": f"calserv-bench-{os.getpid()}",
            "CALSERV_STORAGE_URL": str(self.tmp / "store"),
            "CALSERV_REFCAT_DIR": str(refcats),
            "CALSERV_RATE_LIMIT": "1000000 per minute",
        }
        self._create_db()
        if not (refcats / "GaiaDR3").is_dir():
            print(
                f"bench: building the Gaia demo reference store in {refcats} ...", file=sys.stderr
            )
            self._run(
                [
                    sys.executable,
                    "-m",
                    "flask",
                    "--app",
                    "web",
                    "refcat",
                    "build-demo",
                    "--root",
                    str(refcats),
                ]
            )
        port, floor_port = _free_port(), _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.floor_url = f"http://127.0.0.1:{floor_port}"
        gunicorn = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF)]
        gunicorn += ["--workers", str(web_workers)] if web_workers else []
        self._spawn("web", [*gunicorn, "--bind", f"127.0.0.1:{port}", "web:create_app()"])
        self.web_pid = self.procs[-1].pid
        floor = ["--bind", f"127.0.0.1:{floor_port}", "--pythonpath", "bench", "floor_app:app"]
        self._spawn("floor", [*gunicorn, *floor])
        self.floor_pid = self.procs[-1].pid
        for i in range(workers):
            log = self._spawn(
                f"worker{i}",
                [
                    str(LOW_PRIORITY),
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "workers.celery_app",
                    "worker",
                    "--loglevel=INFO",
                    f"--concurrency={concurrency}",
                    "--without-gossip",
                    "--without-mingle",
                    f"--hostname=bench{i}-{secrets.token_hex(3)}@%h",
                ],
            )
            self.worker_mains.append(self.procs[-1].pid)
            self._wait_ready(log, self.procs[-1])
        self._wait_port(port)
        self._wait_port(floor_port)

    def _run(self, cmd: list[str]) -> str:
        out = subprocess.run(
            cmd, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=600
        )
        if out.returncode:
            raise RuntimeError(f"{' '.join(cmd[:6])} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def _create_db(self) -> None:
        from sqlalchemy import create_engine, text

        admin = create_engine(self.base_db, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {self.db_name}"))
        self._db_created = True
        admin.dispose()
        self._run([sys.executable, "-m", "alembic", "upgrade", "head"])

    def _spawn(self, name: str, cmd: list[str]) -> Path:
        log = self.tmp / f"{name}.log"
        self.procs.append(
            subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=self.env,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        return log

    @staticmethod
    def _wait_ready(log: Path, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + 60
        while b"ready." not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)

    def _wait_port(self, port: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start:\n" + (self.tmp / "web.log").read_text()[-2000:])

    def observatory_and_alert(self) -> tuple[str, str]:
        truth = json.loads((GAIA / "truth.json").read_text())
        tag = secrets.token_hex(3)
        flask = [sys.executable, "-m", "flask", "--app", "web"]
        key = (
            self._run(
                [
                    *flask,
                    "observatory",
                    "add",
                    f"Bench {tag}",
                    "--lon",
                    "20.5",
                    "--lat",
                    "-32.4",
                    "--filters",
                    "G",
                ]
            )
            .strip()
            .splitlines()[-1]
        )
        ivorn = f"ivo://bench/{tag}"
        self._run(
            [
                *flask,
                "alert",
                "add",
                ivorn,
                "--name",
                f"Bench{tag}",
                "--ra",
                str(truth["target_ra"]),
                "--dec",
                str(truth["target_dec"]),
            ]
        )
        return key, ivorn

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        try:
            from sqlalchemy import create_engine, text

            if not self._db_created:
                return
            admin = create_engine(self.base_db, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)"))
            admin.dispose()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the burst --------------------------------------------------------------------------------
def burst(
    client: Client,
    event: str,
    n: int,
    jobs: int,
    timeout: float,
    distinct_bytes: bool,
    run_id: str,
    warmup: int = 12,
    web_pid: int | None = None,
) -> dict:
    """The burst; with `web_pid` (gunicorn's master) also the web tier's CPU per upload and
    per status poll (a phase of `n` polls of finished jobs after the burst)."""
    base = (GAIA / "frame.cat").read_bytes()
    lat: dict[str, list[float]] = {"POST": [], "GET": []}
    statuses: dict[int | None, int] = {}
    sent = {"POST": 0, "GET": 0}
    lock = threading.Lock()

    def hook(method: str, path: str, status: int | None, elapsed: float) -> None:
        with lock:
            statuses[status] = statuses.get(status, 0) + 1
            sent[method] += 1
            if status is not None and status < 400:
                lat[method].append(elapsed * 1000)

    def cpu() -> float:
        return cpu_seconds(web_pid) if web_pid else float("nan")

    # Warm up: each gunicorn worker imports the app on its first requests; not measured.
    def warm(i: int) -> None:
        job = client.upload(
            GAIA / "frame.cat",
            event,
            dry_run=True,
            no_plot=True,
            comment=f"bench {run_id} warm-up {i}",
            mjd=40000.0 + i / 1000,  # another observation each: the comment alone is not
            data=base,
        )
        client.status(job["job_id"])

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(warm, range(warmup)))
    client.on_response = hook
    deadline = time.monotonic() + timeout
    timer = threading.Timer(timeout, client.stop.set)  # hard bound on every loop below
    timer.daemon = True
    timer.start()

    def submit(i: int) -> dict:
        data = base + f"# bench {run_id} {i}\n".encode() if distinct_bytes else base
        return client.upload(
            GAIA / "frame.cat",
            event,
            dry_run=True,
            no_plot=True,
            comment=f"bench {run_id} {i}",
            mjd=50000.0 + i / 1000,
            data=data,
            filename=f"bench{i}.cat",
        )

    accepted, errors, finals = [], [], []
    t0, cpu0 = time.perf_counter(), cpu()
    with ThreadPoolExecutor(jobs) as pool:
        for f in as_completed([pool.submit(submit, i) for i in range(n)]):
            try:
                accepted.append(f.result())
            except (CalservError, Interrupted) as e:
                errors.append(str(e) or type(e).__name__)
    t_submitted = time.perf_counter() - t0
    cpu_per_upload_ms = (cpu() - cpu0) * 1000 / max(sent["POST"], 1)

    def wait(job: dict) -> dict:
        if job.get("status") in ("succeeded", "failed"):
            return job
        return client.wait(job["job_id"], timeout=max(0.0, deadline - time.monotonic()))

    with ThreadPoolExecutor(jobs) as pool:
        for f in as_completed([pool.submit(wait, j) for j in accepted]):
            try:
                finals.append(f.result())
            except (CalservError, Interrupted) as e:
                errors.append(str(e) or type(e).__name__)
    wall = time.perf_counter() - t0
    polls_before, cpu0 = sent["GET"], cpu()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda job: client.status(job["job_id"]), accepted))
    cpu_per_poll_ms = (cpu() - cpu0) * 1000 / max(sent["GET"] - polls_before, 1)
    timer.cancel()
    done = [j for j in finals if j.get("status") in ("succeeded", "failed")]
    created = [datetime.fromisoformat(j["created_at"]) for j in done if j.get("created_at")]
    finished = [datetime.fromisoformat(j["finished_at"]) for j in done if j.get("finished_at")]
    span = (max(finished) - min(created)).total_seconds() if created and finished else wall
    return {
        "submitted": n,
        "accepted": len(accepted),
        "distinct_jobs": len({j["job_id"] for j in accepted}),
        "finished": len(done),
        "succeeded": sum(1 for j in done if j["status"] == "succeeded"),
        "failed": sum(1 for j in done if j["status"] == "failed"),
        "lost": len(accepted) - len(done),
        "errors": errors[:5],
        "http_statuses": {str(k): v for k, v in statuses.items()},
        "submit_s": t_submitted,
        "wall_s": wall,
        "processing_span_s": span,
        "submit_p50_ms": pct(lat["POST"], 50),
        "submit_p95_ms": pct(lat["POST"], 95),
        "status_p50_ms": pct(lat["GET"], 50),
        "status_p95_ms": pct(lat["GET"], 95),
        "status_polls": len(lat["GET"]),
        "failed_examples": [j.get("error") for j in done if j["status"] == "failed"][:3],
        "cpu_per_upload_ms": cpu_per_upload_ms,
        "cpu_per_poll_ms": cpu_per_poll_ms,
        "job_ids": [j["job_id"] for j in accepted],
    }


def floor_cost(url: str, pid: int, n: int, jobs: int, job_ids: list[str]) -> float:
    """CPU ms per request of bench/floor_app.py (gunicorn + Flask + one query), `n` requests
    from `jobs` threads, after a warm-up like the burst's."""
    import urllib3

    http = urllib3.PoolManager(maxsize=jobs)
    ids = job_ids or ["0" * 32]

    def get(i: int) -> None:
        r = http.request("GET", f"{url}/floor/{ids[i % len(ids)]}", retries=False, timeout=30)
        if r.status != 200:
            raise RuntimeError(f"floor endpoint answered {r.status}")

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(get, range(12)))
        cpu0 = cpu_seconds(pid)
        list(pool.map(get, range(n)))
    return (cpu_seconds(pid) - cpu0) * 1000 / n


def report(r: dict) -> str:
    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    rows = [
        ("submitted", f"{r['submitted']}", ""),
        ("accepted (202)", f"{r['accepted']}  ({r['distinct_jobs']} distinct jobs)", ""),
        ("finished", f"{r['finished']}  ({r['succeeded']} succeeded, {r['failed']} failed)", ""),
        ("lost", f"{r['lost']}", "target 0: " + mark(r["lost"] == 0)),
        ("submit p50 / p95", f"{r['submit_p50_ms']:.1f} / {r['submit_p95_ms']:.1f} ms", ""),
        (
            "status-poll p50 / p95",
            f"{r['status_p50_ms']:.1f} / {r['status_p95_ms']:.1f} ms  ({r['status_polls']} polls)",
            "",
        ),
        (
            "web CPU per upload",
            f"{r['cpu_per_upload_ms']:.2f} ms",
            f"{r['cpu_per_upload_ms'] / r['floor_cpu_ms']:.1f} × the floor",
        ),
        (
            "web CPU per status poll",
            f"{r['cpu_per_poll_ms']:.2f} ms",
            f"{r['cpu_per_poll_ms'] / r['floor_cpu_ms']:.1f} × the floor",
        ),
        (
            "floor: Flask + 1 query",
            f"{r['floor_cpu_ms']:.2f} ms",
            "bench/floor_app.py, same gunicorn settings and threads, same run",
        ),
        (
            "frames/s per worker",
            f"{r['frames_per_s_per_worker']:.1f}  ({r['pool_processes']} "
            f"processes, {r['finished']} frames in {r['processing_span_s']:.1f} s)",
            "",
        ),
        (
            "worker RSS max / sum",
            f"{r['worker_rss_max_mb']:.0f} / {r['worker_rss_sum_mb']:.0f} MB",
            f"target ≤ {TARGETS['worker_rss_mb']:.0f} MB per process: "
            + mark(r["worker_rss_max_mb"] <= TARGETS["worker_rss_mb"]),
        ),
        ("submit phase / total", f"{r['submit_s']:.1f} / {r['wall_s']:.1f} s", ""),
        ("HTTP statuses", json.dumps(r["http_statuses"]), ""),
    ]
    w0 = max(len(a) for a, _, _ in rows)
    w1 = max(len(b) for _, b, _ in rows)
    lines = [f"{a.ljust(w0)}  {b.ljust(w1)}  {c}".rstrip() for a, b, c in rows]
    if r["errors"]:
        lines.append("errors (first 5): " + "; ".join(r["errors"]))
    if r["failed_examples"]:
        lines.append("failed jobs (first 3): " + "; ".join(map(str, r["failed_examples"])))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="uploads in the burst (default 1000)")
    p.add_argument("--jobs", type=int, default=8, help="client threads (default 8)")
    p.add_argument("--workers", type=int, default=2, help="Celery workers to start (default 2)")
    p.add_argument("--concurrency", type=int, default=1, help="processes per worker (default 1)")
    p.add_argument(
        "--web-workers", type=int, help="gunicorn workers (default: deploy/gunicorn.conf.py)"
    )
    p.add_argument("--timeout", type=float, default=900, help="bound on the whole burst, s")
    p.add_argument("--warmup", type=int, default=12, help="unmeasured uploads first (default 12)")
    p.add_argument("--distinct-bytes", action="store_true", help="append a line per catalogue")
    p.add_argument("--url", help="an already running calserv on 127.0.0.1 (key: CALSERV_HASHTAG)")
    p.add_argument("--event", help="alert IVORN or name, with --url")
    args = p.parse_args(argv)
    if not 1 <= args.n <= 100_000 or not 1 <= args.jobs <= 256:
        p.error("--n must be in 1..100000 and --jobs in 1..256")

    stop = threading.Event()

    def interrupt(signum, frame):
        stop.set()  # wakes every sleeping request loop, then unwinds to the cleanup below
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    stack = None
    try:
        if args.url:
            if urlparse(args.url).hostname not in LOOPBACK:
                p.error("--url must point at 127.0.0.1: this is a loopback load test")
            if not args.event or not os.environ.get("CALSERV_HASHTAG"):
                p.error("--url needs --event and the key in CALSERV_HASHTAG")
            url, key, event = args.url, os.environ["CALSERV_HASHTAG"], args.event
            mains = find_celery_workers()
        else:
            stack = Stack(args.workers, args.concurrency, args.web_workers)
            url, mains = stack.url, stack.worker_mains
            key, event = stack.observatory_and_alert()
        sampler = RssSampler(mains)
        sampler.start()
        client = Client(
            url,
            key,
            timeout=30,
            poll_interval=0.2,
            retry=RetryPolicy(max_attempts=5, base_s=0.2, cap_s=5),
            stop=stop,
        )
        run_id = secrets.token_hex(4)
        print(f"bench: {args.n} uploads to {url} with {args.jobs} threads ...", file=sys.stderr)
        r = burst(
            client,
            event,
            args.n,
            args.jobs,
            args.timeout,
            args.distinct_bytes,
            run_id,
            args.warmup,
            web_pid=stack.web_pid if stack else None,
        )
        job_ids = r.pop("job_ids")
        r["floor_cpu_ms"] = (
            floor_cost(stack.floor_url, stack.floor_pid, args.n, args.jobs, job_ids)
            if stack
            else float("nan")  # --url: no floor server of ours, and no gunicorn pid to read
        )
        sampler.stop.set()
        sampler.join()
        pool = sampler.pool()
        r["pool_processes"] = len(pool) or 1
        r["frames_per_s_per_worker"] = (
            r["finished"] / max(r["processing_span_s"], 1e-9) / (len(pool) or 1)
        )
        r["worker_rss_max_mb"] = max(sampler.peak.values(), default=float("nan"))
        r["worker_rss_sum_mb"] = sum(sampler.peak.values())
        r["args"] = vars(args)
    finally:
        if stack is not None:
            stack.close()
    table = report(r)
    print(table)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({**r, "table": table}, indent=1, default=str))
    print(f"\n(written to {path.relative_to(ROOT)})", file=sys.stderr)
    ok = r["lost"] == 0 and r["accepted"] == r["submitted"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
