"""The overnight batch: distinct frames through `calserv-upload` with its defaults, against the
service's own ideal measured in the same run.

    .venv/bin/python bench/bench_batch.py               # 1000 frames of ~2.7k and 1000 of ~10k
    .venv/bin/python bench/bench_batch.py --n 200       # quicker

It starts its own stack as bench/bench_load.py does (gunicorn with deploy/gunicorn.conf.py, one
Celery worker with one process per core at `make run`'s low CPU priority, a fresh database and
queue on the local PostgreSQL and Redis of ``make services``) and stops it at the end.

Frames: the Gaia demo frame (2,690 sources) and the same frame with 7,310 extra faint sources
spread over its field (10,000); each copy made distinct by perturbing 50 magnitudes by up to
1 mmag (cheap: the text is edited in place, the science is unchanged).

Tables:

1. per frame size: wall time of ``calserv-upload DIR --event … --dry-run`` (defaults otherwise:
   4 concurrent uploads, the bulk long-poll collector), the service's frames/s, the calibration's
   own core-seconds (the sum of the jobs' ``processing_time``) spread over the machine's cores as
   the ideal frames/s, the ratio, and where the CPU went (client, web tier, worker processes —
   inside and outside the calibration — and the rest of the machine);
2. ``wait=`` overhead: the answer's arrival minus the job's ``finished_at`` commit, and the whole
   upload's latency, idle and under two CPU hogs at normal priority;
3. the wake-up transport: Postgres NOTIFY (sent in the committing transaction) against Redis
   pub/sub (published after it), publish-to-receipt latency.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "client"))
sys.path.insert(2, str(ROOT / "bench"))

import bench_load  # noqa: E402
import urllib3  # noqa: E402
from bench_load import GAIA, Stack, _children  # noqa: E402

from config import local_redis_url  # noqa: E402

CORES = os.cpu_count() or 1
TICK = os.sysconf("SC_CLK_TCK")
MAG_COLUMN = 5  # MAG_AUTO, 0-based among the whitespace-separated fields


# -- frames -----------------------------------------------------------------------------------
def _demo_lines() -> tuple[list[str], list[str]]:
    text = (GAIA / "frame.cat").read_text().splitlines(keepends=True)
    return [x for x in text if x.startswith("#")], [x for x in text if not x.startswith("#")]


def _extra_sources(n: int, start: int, rng: random.Random) -> list[str]:
    """`n` faint sources spread over the demo frame's field, in its format."""
    rows = []
    for k in range(n):
        ra, dec = rng.uniform(117.9, 122.1), rng.uniform(43.51, 46.49)
        mag, err = rng.uniform(-8.5, -5.0), rng.uniform(0.02, 0.2)
        flux = 10 ** (-0.4 * mag)
        rows.append(
            f"{start + k:10d} {rng.uniform(1, 2160):11.4f} {rng.uniform(1, 2160):11.4f} "
            f"{ra:11.7f} {dec:+11.7f} {mag:8.4f} {err:8.4f} {mag + 0.005:8.4f} {err:8.4f} "
            f"{flux:12.2f} {flux * err:12.4f} {2.9:8.2f} {0:3d} {0.9:6.3f}\n"
        )
    return rows


def make_frames(root: Path, label: str, n: int, sources: int, seed: int) -> Path:
    rng = random.Random(seed)
    header, rows = _demo_lines()
    if sources > len(rows):
        rows = rows + _extra_sources(sources - len(rows), len(rows) + 1, rng)
    out = root / label
    out.mkdir(parents=True)
    for i in range(n):
        lines = list(rows)
        for j in rng.sample(range(len(lines)), 50):
            fields = lines[j].split()
            fields[MAG_COLUMN] = f"{float(fields[MAG_COLUMN]) + rng.uniform(-1e-3, 1e-3):.4f}"
            lines[j] = " ".join(fields) + "\n"
        (out / f"frame{i:05d}.cat").write_text("".join(header) + "".join(lines))
    return out


def calib_alone(files: list[Path], refcat_dir: str) -> tuple[float, float]:
    """CPU and wall seconds per frame of the calibration alone, in this process, as a worker
    does it (read, reference footprint, calibrate) without the service around it. CPU time is
    the machine-independent figure: on a shared host the wall time includes waiting for a core."""
    from calib import RefCatalog, calibrate, read_catalog
    from refcats.store import RefStore

    store = RefStore(Path(refcat_dir), 512 * 1024 * 1024)
    truth = json.loads((GAIA / "truth.json").read_text())

    def one(path: Path) -> None:
        catalog = read_catalog(path.read_bytes())
        tables = store.footprint(catalog.ra, catalog.dec)
        refs = [
            RefCatalog.from_columns(survey, {c: t.column(c).to_numpy() for c in t.column_names})
            for survey, t in tables.items()
        ]
        calibrate(catalog, refs, truth["target_ra"], truth["target_dec"])

    one(files[0])  # warm: imports, reference cache
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for f in files:
        one(f)
    return (time.process_time() - cpu0) / len(files), (time.perf_counter() - wall0) / len(files)


# -- CPU accounting ---------------------------------------------------------------------------
def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (alive now) in these trees."""
    total = 0
    for root in pids:
        for p in _tree(root):
            try:
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def machine_busy_seconds() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


# -- the batch --------------------------------------------------------------------------------
def run_batch(stack: Stack, key: str, ivorn: str, frames: Path, label: str, engine) -> dict:
    from sqlalchemy import text

    web, workers = [stack.procs[0].pid], stack.worker_mains
    web0, work0, busy0 = cpu_seconds(web), cpu_seconds(workers), machine_busy_seconds()
    client0 = os.times()
    t0 = time.monotonic()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "calserv_client.cli",
            str(frames),
            "--event",
            ivorn,
            "--dry-run",
            "--url",
            stack.url,
            "--comment",
            label,
            "--json",
            "-v",  # one stderr line per request: what the client asked, how long it took
        ],
        env={**stack.env, "CALSERV_HASHTAG": key, "PYTHONPATH": str(ROOT / "client")},
        capture_output=True,
        text=True,
        timeout=7200,
    )
    wall = time.monotonic() - t0
    client1 = os.times()
    web_cpu, work_cpu = cpu_seconds(web) - web0, cpu_seconds(workers) - work0
    busy = machine_busy_seconds() - busy0
    summary = json.loads(out.stdout)["summary"] if out.stdout.startswith("{") else {}
    with engine.connect() as conn:
        n, calib_s, first, last = conn.execute(
            text(
                "SELECT count(*), sum((result->>'processing_time')::float), min(created_at), "
                "max(finished_at) FROM jobs WHERE params->>'comment' = :c AND state = 'succeeded'"
            ),
            {"c": label},
        ).one()
    client_cpu = (client1.children_user + client1.children_system) - (
        client0.children_user + client0.children_system
    )
    sample = sorted(frames.glob("*.cat"))[:100]
    alone_cpu, alone_wall = calib_alone(sample, stack.env["CALSERV_REFCAT_DIR"])
    return {
        "label": label,
        "exit": out.returncode,
        "alone_cpu_s": alone_cpu,
        "alone_wall_s": alone_wall,
        "counts": summary.get("counts"),
        "n": n,
        "wall_s": wall,
        "service_fps": n / wall,
        "calib_core_s": calib_s or 0.0,
        "ideal_fps": CORES / alone_cpu,
        "client_cpu_s": client_cpu,
        "web_cpu_s": web_cpu,
        "worker_cpu_s": work_cpu,
        "machine_busy_s": busy,
        "server_span_s": (last - first).total_seconds() if first and last else None,
        "requests": requests_seen(out.stderr),
        "stderr_tail": out.stderr[-500:] if out.returncode else "",
    }


def requests_seen(log: str) -> dict[str, list[float]]:
    """Milliseconds of each request in the client's -v log, by method and path kind."""
    seen: dict[str, list[float]] = {}
    for line in log.splitlines():
        parts = line.split()  # HH:MM:SS METHOD PATH -> STATUS in N ms
        if len(parts) == 8 and parts[3] == "->" and parts[7] == "ms":
            path = parts[2]
            if path.startswith("/jobs/") and path != "/jobs/status":
                path = "/jobs/<id>"
            kind = f"{parts[1]} {path}"
            seen.setdefault(kind, []).append(float(parts[6]))
    return seen


# -- wait= ------------------------------------------------------------------------------------
def wait_latency(
    stack: Stack, key: str, ivorn: str, frames: Path, tag: str, n: int, engine, first_mjd: float
):
    from sqlalchemy import text

    http = urllib3.PoolManager()
    files = sorted(frames.glob("*.cat"))[:n]
    overhead, total = [], []
    for i, f in enumerate(files):
        t0 = time.monotonic()
        r = http.request(
            "POST",
            f"{stack.url}/upload",
            fields={
                "hashtag": key,
                "EventID": ivorn,
                "dryRun": "1",
                "noPlot": "1",
                "outputFormat": "json",
                "comment": f"{tag} {i}",
                # another observation per run: the same frame with only another comment would
                # return the job of the previous run
                "MJD": f"{first_mjd + i / 1000:.3f}",
                "wait": "30",
                "sexCat": (f.name, f.read_bytes()),
            },
        )
        received = datetime.now(UTC)
        total.append(time.monotonic() - t0)
        body = json.loads(r.data)
        if body.get("status") != "succeeded":
            raise RuntimeError(f"wait= upload did not succeed: {body}")
        with engine.connect() as conn:
            finished = conn.execute(
                text("SELECT finished_at FROM jobs WHERE id = :id"), {"id": body["job_id"]}
            ).scalar_one()
        overhead.append((received - finished).total_seconds())
    return overhead, total


# -- transports -------------------------------------------------------------------------------
def transport_latency(stack: Stack, n: int = 200) -> dict[str, list[float]]:
    import psycopg2
    import redis
    from sqlalchemy import make_url

    dsn = make_url(stack.env["CALSERV_DATABASE_URL"]).set(drivername="postgresql")
    dsn = dsn.render_as_string(hide_password=False)
    listener, sender = psycopg2.connect(dsn), psycopg2.connect(dsn)
    listener.autocommit = True
    listener.cursor().execute("LISTEN bench_wake")
    pg = []
    for i in range(n):
        cur = sender.cursor()
        cur.execute("SELECT pg_notify('bench_wake', %s)", (str(i),))
        t0 = time.perf_counter()
        sender.commit()
        while not listener.notifies:
            select.select([listener], [], [], 1.0)
            listener.poll()
        listener.notifies.clear()
        pg.append(time.perf_counter() - t0)
    listener.close()
    sender.close()

    var = Path(stack.env.get("CALSERV_VAR_DIR", ROOT / "var"))
    port = int(stack.env.get("CALSERV_REDIS_PORT", "6380"))
    r = redis.Redis.from_url(stack.env.get("CALSERV_REDIS_URL") or local_redis_url(var, port))
    sub = r.pubsub()
    sub.subscribe("bench_wake")
    sub.get_message(timeout=1.0)  # the subscribe confirmation
    rd = []
    for i in range(n):
        t0 = time.perf_counter()
        r.publish("bench_wake", str(i))
        while sub.get_message(timeout=1.0) is None:
            pass
        rd.append(time.perf_counter() - t0)
    sub.close()
    return {"Postgres NOTIFY (on commit)": pg, "Redis PUBLISH": rd}


# -- report -----------------------------------------------------------------------------------
def ms(values: list[float], q: float) -> str:
    values = sorted(values)
    return f"{values[min(len(values) - 1, int(q * len(values)))] * 1000:.1f}"


def report(batches: list[dict], waits: dict, transports: dict, meta: dict) -> str:
    lines = [
        f"calserv overnight batch — {meta['date']}, {CORES} cores, load average before "
        f"{meta['load']}, worker priority: {meta['priority']}",
        "",
        "| frames | N ok | wall s | service frames/s | mean processing_time ms | ideal frames/s "
        "(N / (Σ processing_time / cores)) | service / that ideal | calib alone CPU ms/frame "
        "| ideal frames/s (cores / CPU per frame) | service / that ideal |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b in batches:
        pt_ideal = b["n"] / max(b["calib_core_s"] / CORES, 1e-9)
        lines.append(
            f"| {b['label']} | {b['n']} | {b['wall_s']:.1f} | {b['service_fps']:.1f} | "
            f"{b['calib_core_s'] / max(b['n'], 1) * 1000:.0f} | {pt_ideal:.1f} | "
            f"{100 * b['service_fps'] / pt_ideal:.0f} % | "
            f"{b['alone_cpu_s'] * 1000:.1f} | {b['ideal_fps']:.1f} | "
            f"{100 * b['service_fps'] / b['ideal_fps']:.0f} % |"
        )
    lines += [
        "",
        "Where the machine's core-seconds went during each batch (wall × cores), CPU seconds:",
        "",
        "| frames | wall × cores | calibration (alone CPU × N) | worker beyond it | web tier "
        "| client | other processes (Postgres, Redis, other users) | idle |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in batches:
        capacity = b["wall_s"] * CORES
        calib = b["alone_cpu_s"] * b["n"]
        rest = b["machine_busy_s"] - b["worker_cpu_s"] - b["web_cpu_s"] - b["client_cpu_s"]
        lines.append(
            f"| {b['label']} | {capacity:.1f} | {calib:.1f} | {b['worker_cpu_s'] - calib:.1f} | "
            f"{b['web_cpu_s']:.1f} | {b['client_cpu_s']:.1f} | {rest:.1f} | "
            f"{max(0.0, capacity - b['machine_busy_s']):.1f} |"
        )
    lines += [
        "",
        "| frames | request | count | p50 ms | p95 ms |",
        "|---|---|---|---|---|",
    ]
    for b in batches:
        for kind, values in sorted(b["requests"].items()):
            lines.append(
                f"| {b['label']} | {kind} | {len(values)} | {ms([v / 1000 for v in values], 0.5)}"
                f" | {ms([v / 1000 for v in values], 0.95)} |"
            )
    lines += [
        "",
        "(processing_time is wall-clock time inside the worker: on a shared host it includes "
        "time spent waiting for a core, so the ideal uses the calibration's CPU time.)",
        "",
        "| wait=30 upload | n | overhead p50 ms | overhead max ms | latency p50 ms "
        "| latency max ms |",
        "|---|---|---|---|---|---|",
    ]
    for name, (over, total) in waits.items():
        lines.append(
            f"| {name} | {len(over)} | {ms(over, 0.5)} | {max(over) * 1000:.1f} | "
            f"{ms(total, 0.5)} | {max(total) * 1000:.1f} |"
        )
    lines += [
        "",
        "(overhead = the answer's arrival − the job's finished_at commit; latency = the whole "
        "upload request.)",
        "",
        "| wake-up transport | n | p50 ms | p95 ms |",
        "|---|---|---|---|",
    ]
    for name, vals in transports.items():
        lines.append(f"| {name} | {len(vals)} | {ms(vals, 0.5)} | {ms(vals, 0.95)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="frames of each size (default 1000)")
    p.add_argument("--wait-n", type=int, default=20, help="wait= uploads per condition")
    p.add_argument(
        "--normal-priority",
        action="store_true",
        help="run the worker at normal CPU priority (default: `make run`'s low priority)",
    )
    args = p.parse_args(argv)
    if args.normal_priority:
        bench_load.LOW_PRIORITY = Path("/usr/bin/env")  # exec the worker as it is
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "priority": "normal" if args.normal_priority else "low (deploy/low-priority.sh)",
    }
    tmp = Path(tempfile.mkdtemp(prefix="calserv-batch-bench-"))
    sets = [("2.7k", 2690), ("10k", 10000)]
    print(f"bench: writing {2 * args.n} frames under {tmp} ...", file=sys.stderr)
    dirs = {label: make_frames(tmp, label, args.n, size, i) for i, (label, size) in enumerate(sets)}
    stack = Stack(workers=1, concurrency=CORES, web_workers=None)
    try:
        from sqlalchemy import create_engine

        engine = create_engine(stack.env["CALSERV_DATABASE_URL"])
        key, ivorn = stack.observatory_and_alert()
        tag = os.urandom(3).hex()
        batches = []
        for label, _ in sets:
            print(f"bench: {args.n} frames of {label} sources ...", file=sys.stderr)
            batches.append(run_batch(stack, key, ivorn, dirs[label], f"{label} sources", engine))
            print(json.dumps(batches[-1], default=str), file=sys.stderr)
        waits = {}
        wait_dir = make_frames(tmp, "wait", args.wait_n, 2690, 99)
        waits["idle"] = wait_latency(
            stack, key, ivorn, wait_dir, f"{tag} idle", args.wait_n, engine, 50000.0
        )
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        try:
            time.sleep(1.0)
            waits["two CPU hogs"] = wait_latency(
                stack, key, ivorn, wait_dir, f"{tag} hogs", args.wait_n, engine, 51000.0
            )
        finally:
            for h in hogs:
                h.kill()
                h.wait()
        transports = transport_latency(stack)
        engine.dispose()
    finally:
        stack.close()
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    print(report(batches, waits, transports, meta))
    if any(b["exit"] for b in batches):
        print("\nsome batches did not exit 0:", [b["stderr_tail"] for b in batches if b["exit"]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
