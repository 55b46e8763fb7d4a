"""Benchmark of the reference store (prints a table; not a test).

    .venv/bin/python bench/bench_refcats.py [--rows 100000000] [--remote-rows 2000000]

1. Gaia demo build (target ≤ 10 s).
2. A synthetic survey of ``--rows`` stars (≥ 100 M; B, V, R, I) in a 30° cone, generated in
   streaming chunks to Parquet, ingested by ``refcat ingest`` in a subprocess: wall time and
   peak RSS (the subprocess's own ``VmHWM``; target ≤ 1 GB whatever the size).
3. Cones of 20′ and 1° on it, cold (a new `RefStore`: empty row-group cache; the OS page cache
   is not dropped) and warm (same store, repeated), beside lsdb on the same collection
   (``lsdb.open_catalog(...).cone_search(...).compute()``, a new catalogue object when cold).
4. Remote stores: a ``--remote-rows`` survey served by a local HTTP server and a local
   S3-compatible server (moto), cold (empty partition cache: every partition downloaded) and
   with the partition cache filled by an earlier worker, against local cold.

Data are built under ``--data`` (default /tmp/calserv-bench-refcats) and removed afterwards
unless ``--keep``; the table is also written to bench/results/refcats.txt.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from refcats.gaia_demo import build_gaia_demo  # noqa: E402
from refcats.ingest import ingest  # noqa: E402
from refcats.location import PartitionCache  # noqa: E402
from refcats.registry import Registration, save  # noqa: E402
from refcats.store import RefStore  # noqa: E402
from refcats.synth import write_synth  # noqa: E402

CENTRE = (150.0, 2.0)
RADIUS = 30.0
CONES = [("20'", 20 / 60), ("1°", 1.0)]


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t0, out


def ms(x: float) -> str:
    return f"{1000 * x:.1f}"


def centres(rng, n, spread):
    out = []
    for _ in range(n):
        r, phi = rng.uniform(0, spread), rng.uniform(0, 2 * np.pi)
        out.append((CENTRE[0] + r * np.cos(phi), CENTRE[1] + r * np.sin(phi)))
    return out


def lsdb_cone(catalog, ra, dec, radius):
    """lsdb's cone on an opened catalogue, computed (its own partition search and filter)."""
    return catalog.cone_search(ra, dec, radius * 3600).compute()


def table_lines(header, rows) -> list[str]:
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in table]


def ingest_subprocess(root: Path, survey: str, src: Path) -> tuple[float, str, int]:
    """Ingest in a child process; (seconds, summary, peak RSS in kB)."""
    # The child reports its own VmHWM: getrusage(RUSAGE_CHILDREN) would include the pages the
    # child shared with this (large) process between fork and exec.
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from refcats.ingest import ingest
        info = ingest(Path({str(root)!r}), {survey!r}, Path({str(src)!r}), ["B", "V", "R", "I"])
        hwm = next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM"))
        print(info.nrows, info.npartitions, info.min_order, info.max_order, hwm)
    """)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"ingest failed: {proc.stderr[-3000:]}")
    n, nparts, lo, hi, peak_kb = proc.stdout.split()
    summary = f"{int(n)} stars, {nparts} partitions (orders {lo}-{hi})"
    return seconds, summary, int(peak_kb)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000_000)
    ap.add_argument("--remote-rows", type=int, default=2_000_000)
    ap.add_argument("--data", type=Path, default=Path("/tmp/calserv-bench-refcats"))
    ap.add_argument("--queries", type=int, default=8, help="cold queries per cone size")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    args = ap.parse_args()
    data = args.data
    data.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def out(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    out(f"calserv refcats benchmark — {time.strftime('%Y-%m-%d %H:%M')}, "
        f"python {sys.version.split()[0]}")  # fmt: skip

    # 1. gaia demo
    gaia_root = data / "gaia-store"
    shutil.rmtree(gaia_root, ignore_errors=True)
    t_gaia, gaia = timed(build_gaia_demo, gaia_root, force=True)
    out(f"gaia demo build: {gaia.nrows} stars, {gaia.npartitions} partitions: "
        f"{t_gaia:.2f} s (target ≤ 10 s)")  # fmt: skip

    # 2. big synthetic survey, streaming generation then ingest in a subprocess
    src = data / f"big-{args.rows}.parquet"
    if not src.exists():
        t, _ = timed(write_synth, src.with_suffix(".tmp.parquet"), args.rows, chunk_rows=2_000_000,
                     ra=CENTRE[0], dec=CENTRE[1], radius_deg=RADIUS, seed=42)  # fmt: skip
        src.with_suffix(".tmp.parquet").rename(src)
        out(f"generated {src.name} ({src.stat().st_size / 1e9:.2f} GB) in {t:.0f} s "
            "(2 M-row chunks)")  # fmt: skip
    root = data / "store"
    shutil.rmtree(root, ignore_errors=True)
    t_ing, summary, peak_kb = ingest_subprocess(root, "BIG", src)
    nrows = int(summary.split()[0])
    out()
    out(f"ingest of {src.name}: {summary}: {t_ing:.0f} s ({nrows / t_ing / 1e6:.2f} M rows/s), "
        f"peak RSS {peak_kb / 1024:.0f} MB (VmHWM; target ≤ 1024 MB)")  # fmt: skip
    if not args.keep:
        src.unlink()

    # 3. cones beside lsdb
    import lsdb

    rng = np.random.default_rng(7)
    rows = []
    for label, radius in CONES:
        points = centres(rng, args.queries, RADIUS - 3)
        cold, lcold, nstars = [], [], []
        for ra, dec in points:
            t, got = timed(RefStore(root).cone, "BIG", ra, dec, radius)
            cold.append(t)
            nstars.append(got.num_rows)
            t, theirs = timed(lsdb_cone, lsdb.open_catalog(root / "BIG"), ra, dec, radius)
            lcold.append(t)
            assert len(theirs) == got.num_rows, (len(theirs), got.num_rows)
        store = RefStore(root)
        cat = lsdb.open_catalog(root / "BIG")
        warm, lwarm = [], []
        for ra, dec in points[:3]:
            store.cone("BIG", ra, dec, radius)
            for _ in range(5):
                warm.append(timed(store.cone, "BIG", ra, dec, radius)[0])
                lwarm.append(timed(lsdb_cone, cat, ra, dec, radius)[0])
        med = statistics.median
        rows.append((label, str(int(np.median(nstars))), ms(med(cold)), ms(med(lcold)),
                     f"{med(lcold) / med(cold):.1f}×", ms(med(warm)), ms(med(lwarm)),
                     f"{med(lwarm) / med(warm):.1f}×"))  # fmt: skip
    out()
    out(
        f"cones on BIG ({nrows / 1e6:.0f} M stars), median ms; cold: {args.queries} centres, "
        "new store each; warm: 3 centres × 5 repeats"
    )
    header = ("cone", "stars", "calserv cold", "lsdb cold", "lsdb/calserv", "calserv warm",
              "lsdb warm", "lsdb/calserv")  # fmt: skip
    for line in table_lines(header, rows):
        out(line)

    # 4. remote stores
    from tests.refcats.servers import HttpServer, S3Server

    small = data / "remote-src.parquet"
    write_synth(small, args.remote_rows, ra=CENTRE[0], dec=CENTRE[1], radius_deg=3.0, seed=3)
    local = data / "remote-store"
    shutil.rmtree(local, ignore_errors=True)
    ingest(local, "MID", small, ["V", "R"])
    small.unlink()
    collection = local / ".." / "remote-store" / "MID"
    http = HttpServer(local)
    s3 = S3Server()
    s3_url = s3.upload(collection.resolve(), "MID")
    reg_root = data / "registry"
    shutil.rmtree(reg_root, ignore_errors=True)
    save(reg_root, Registration("HTTP", f"{http.url}/MID", {}))
    save(reg_root, Registration("S3", s3_url, {}, s3.options))
    rows = []
    for label, radius in CONES:
        points = centres(rng, args.queries, 1.5)
        times: dict[str, list[float]] = {"local": [], "HTTP": [], "S3": [], "HTTP cached": []}
        for i, (ra, dec) in enumerate(points):
            times["local"].append(timed(RefStore(local).cone, "MID", ra, dec, radius)[0])
            for name in ("HTTP", "S3"):
                cache = PartitionCache(data / f"cache-{name}-{label}-{i}", 10 << 30)
                store = RefStore(reg_root, disk_cache=cache)
                times[name].append(timed(store.cone, name, ra, dec, radius)[0])
                if name == "HTTP":  # a second worker process on the same machine
                    again = RefStore(reg_root, disk_cache=cache)
                    times["HTTP cached"].append(timed(again.cone, name, ra, dec, radius)[0])
                cache.clear()
        med = {k: statistics.median(v) for k, v in times.items()}
        loc = med["local"]
        rows.append((label, ms(loc), ms(med["HTTP"]), f"{med['HTTP'] / loc:.1f}×",
                     ms(med["S3"]), f"{med['S3'] / loc:.1f}×", ms(med["HTTP cached"])))  # fmt: skip
    http.stop()
    s3.stop()
    out()
    out(
        f"remote cold cones on MID ({args.remote_rows / 1e6:.0f} M stars), median ms; "
        "cold = new store and empty partition cache"
    )
    header = ("cone", "local cold", "HTTP cold", "HTTP/local", "S3 cold", "S3/local",
              "HTTP, cache filled")  # fmt: skip
    for line in table_lines(header, rows):
        out(line)

    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "refcats.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
