"""Benchmark of the reference store (prints a table; not a test).

    .venv/bin/python bench/bench_refcats.py [--dense-rows 5000000] [--csv-rows 20000000]

1. Gaia demo build (target ≤ 10 s).
2. A dense synthetic survey (≥ 5 M stars in an 8° cone, ~25 k stars/deg²) ingested from
   Parquet; footprint queries of 20', 1° and 3° square fields (catalogue positions spread
   over the field), cold (a new `RefStore`: empty row-group cache and metadata; the OS page
   cache is not dropped) and warm (same store, repeated), against a naive full scan of the
   same Parquet file (``pyarrow.parquet.read_table`` + angular filter) and against the same
   filter on the table already in memory. Targets: warm 20' ≤ 5 ms, cold ≤ 50 ms.
3. Ingest of a 20 M-row CSV in a subprocess, peak RSS = the subprocess's own ``VmHWM``
   (target ≤ 1 GB).

Data are built under ``--data`` (default /tmp/calserv-bench-refcats) and reused; the table
is also written to bench/results/refcats.txt.
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
from refcats.sky import within  # noqa: E402
from refcats.store import RefStore  # noqa: E402
from refcats.synth import write_synth  # noqa: E402

CENTRE = (150.0, 2.0)
DENSE_RADIUS = 8.0
FIELDS = [("20'", 20 / 60), ("1°", 1.0), ("3°", 3.0)]


def field_positions(rng, ra0, dec0, side_deg, n=400):
    """Catalogue positions spread over a square field of ``side_deg`` centred on (ra0, dec0)."""
    x = rng.uniform(-side_deg / 2, side_deg / 2, n)
    y = rng.uniform(-side_deg / 2, side_deg / 2, n)
    return (ra0 + x / np.cos(np.radians(dec0 + y))) % 360.0, dec0 + y


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t0, out


def ms(x: float) -> str:
    return f"{1000 * x:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dense-rows", type=int, default=5_000_000)
    ap.add_argument("--csv-rows", type=int, default=20_000_000)
    ap.add_argument("--data", type=Path, default=Path("/tmp/calserv-bench-refcats"))
    ap.add_argument("--queries", type=int, default=15, help="cold queries per field size")
    args = ap.parse_args()
    data = args.data
    data.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def out(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    stamp = time.strftime("%Y-%m-%d %H:%M")
    out(f"calserv refcats benchmark — {stamp}, python {sys.version.split()[0]}")

    # 1. gaia demo
    gaia_root = data / "gaia-store"
    shutil.rmtree(gaia_root, ignore_errors=True)
    t_gaia, gaia = timed(build_gaia_demo, gaia_root, force=True)
    out(
        f"gaia demo build: {gaia.nrows} stars, {gaia.npartitions} partitions: "
        f"{t_gaia:.2f} s (target ≤ 10 s)"
    )

    # 2. dense survey
    dense_src = data / f"dense-{args.dense_rows}.parquet"
    if not dense_src.exists():
        t, _ = timed(write_synth, dense_src.with_suffix(".tmp.parquet"), args.dense_rows,
                     ra=CENTRE[0], dec=CENTRE[1], radius_deg=DENSE_RADIUS, seed=42)  # fmt: skip
        dense_src.with_suffix(".tmp.parquet").rename(dense_src)
        out(f"generated {dense_src.name} in {t:.1f} s")
    root = data / "dense-store"
    t_ing, info = timed(ingest, root, "DENSE", dense_src, ["B", "V", "R", "I"])
    out(
        f"dense ingest (Parquet): {info.nrows} stars, {info.npartitions} partitions "
        f"(orders {info.min_order}-{info.max_order}): {t_ing:.1f} s "
        f"({info.nrows / t_ing / 1e6:.2f} M rows/s)"
    )

    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    rows = []
    mem_table = pq.read_table(dense_src)
    for label, side in FIELDS:
        centres = []
        for _ in range(args.queries):
            r = rng.uniform(0, DENSE_RADIUS - 2.5)
            phi = rng.uniform(0, 2 * np.pi)
            centres.append((CENTRE[0] + r * np.cos(phi), CENTRE[1] + r * np.sin(phi)))
        positions = [field_positions(rng, ra, dec, side) for ra, dec in centres]
        cold, nstars = [], []
        for ra, dec in positions:
            store = RefStore(root)
            t, res = timed(store.footprint, ra, dec)
            cold.append(t)
            nstars.append(res["DENSE"].num_rows)
        store = RefStore(root)
        warm = []
        for ra, dec in positions[:5]:
            store.footprint(ra, dec)
            for _ in range(10):
                warm.append(timed(store.footprint, ra, dec)[0])
        # naive: read everything, then filter (3 runs), and filter an in-memory table
        from refcats.store import enclosing_cone

        ra0, dec0, rad = enclosing_cone(*positions[0])
        rad += 30 / 3600

        def naive_scan(ra0=ra0, dec0=dec0, rad=rad):
            t = pq.read_table(dense_src)
            return t.filter(within(t["ra"].to_numpy(), t["dec"].to_numpy(), ra0, dec0, rad))

        def naive_mem(ra0=ra0, dec0=dec0, rad=rad, t=mem_table):
            return t.filter(within(t["ra"].to_numpy(), t["dec"].to_numpy(), ra0, dec0, rad))

        scan = min(timed(naive_scan)[0] for _ in range(3))
        memf = min(timed(naive_mem)[0] for _ in range(3))
        assert naive_scan().num_rows == RefStore(root).footprint(*positions[0])["DENSE"].num_rows
        rows.append(
            (label, int(np.median(nstars)), statistics.median(cold), float(np.percentile(cold, 95)),
             statistics.median(warm), float(np.percentile(warm, 95)), scan, memf)
        )  # fmt: skip
    del mem_table
    out()
    out(f"footprint queries on DENSE ({info.nrows / 1e6:.1f} M stars), times in ms")
    out(f"(cold: {args.queries} fields, new RefStore each; warm: 5 fields x 10 repeats)")
    header = ("field", "stars", "cold med", "cold p95", "warm med", "warm p95",
              "naive scan", "naive in-RAM")  # fmt: skip
    table = [header] + [
        (r[0], str(r[1]), ms(r[2]), ms(r[3]), ms(r[4]), ms(r[5]), ms(r[6]), ms(r[7])) for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        out("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    out("targets: 20' warm ≤ 5 ms, cold ≤ 50 ms")

    # 3. 20 M-row CSV ingest, peak RSS of a subprocess
    csv_src = data / f"big-{args.csv_rows}.csv"
    if not csv_src.exists():
        t, _ = timed(write_synth, csv_src.with_suffix(".tmp.csv"), args.csv_rows,
                     ra=CENTRE[0], dec=CENTRE[1], radius_deg=40.0, seed=43)  # fmt: skip
        csv_src.with_suffix(".tmp.csv").rename(csv_src)
        out(f"generated {csv_src.name} ({csv_src.stat().st_size / 1e9:.2f} GB) in {t:.0f} s")
    # The child reports its own VmHWM: getrusage(RUSAGE_CHILDREN) would include the pages the
    # child shared with this (large) process between fork and exec.
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from refcats.ingest import ingest
        info = ingest(Path({str(data / "big-store")!r}), "BIG", Path({str(csv_src)!r}),
                      ["B", "V", "R", "I"])
        hwm = next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM"))
        print(info.nrows, info.npartitions, info.min_order, info.max_order, hwm)
    """)
    shutil.rmtree(data / "big-store", ignore_errors=True)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    t_csv = time.perf_counter() - t0
    if proc.returncode:
        out(f"CSV ingest FAILED: {proc.stderr[-2000:]}")
    else:
        n, nparts, lo, hi, peak_kb = proc.stdout.split()
        out()
        out(
            f"CSV ingest: {int(n)} stars ({csv_src.stat().st_size / 1e9:.2f} GB), "
            f"{nparts} partitions (orders {lo}-{hi}): {t_csv:.0f} s "
            f"({int(n) / t_csv / 1e6:.2f} M rows/s), peak RSS {int(peak_kb) / 1024:.0f} MB "
            "(VmHWM; target ≤ 1024 MB)"
        )
    shutil.rmtree(data / "big-store", ignore_errors=True)

    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "refcats.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
