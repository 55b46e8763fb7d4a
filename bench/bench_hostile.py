"""Hostile uploads against the worker's calibration path: every row must stay bounded.

    .venv/bin/python bench/bench_hostile.py

Each file is calibrated in a fresh process doing what a worker child does: warm the reference
store (the Gaia demo survey, built into a temporary directory), then read, check and calibrate
the catalogue under the per-job memory budget (`JOB_MEMORY_MB`, default 1024), and report the
outcome a job would show. The table gives the file, its size, the process's peak RSS (VmHWM,
warm-up included: the baseline row is a normal frame), how far the job raised that peak above
the warmed-up process's, the time of the job alone and the outcome. Before the duplicate search
was bounded and the per-job memory budget applied, the probe measured 1.26 GB for 4,000 sources
at one position and 2.8 GB for 6,000 (the duplicate search's N^2 pairs), 2.1 GB for 48 MB of
comment lines, and a whole-survey read for the poles.
Prints the table and writes it to bench/results/hostile.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FRAME = ROOT / "tests" / "data" / "gaia-demo" / "frame.cat"
TARGET = (120.0, 43.5)


def _header_and_rows() -> tuple[bytes, list[bytes]]:
    lines = FRAME.read_bytes().splitlines(keepends=True)
    return b"".join(x for x in lines if x.startswith(b"#")), [
        x for x in lines if not x.startswith(b"#")
    ]


def _with_positions(rows: list[bytes], ra: np.ndarray, dec: np.ndarray) -> bytes:
    out = []
    for i, (r, d) in enumerate(zip(ra, dec, strict=True)):
        cols = rows[i % len(rows)].split()
        cols[3], cols[4] = f"{r:.7f}".encode(), f"{d:+.7f}".encode()
        out.append(b" ".join(cols) + b"\n")
    return b"".join(out)


def hostile_files(out: Path) -> dict[str, Path]:
    """The hostile cases (sources piled at one position, frames spanning the poles, bad values,
    huge comments or bodies, random bytes) and a normal frame as the baseline."""
    header, rows = _header_and_rows()
    files: dict[str, bytes] = {"baseline: the Gaia demo frame": FRAME.read_bytes()}
    for n in (4_000, 6_000, 50_000):
        files[f"{n:,} sources at one position"] = header + _with_positions(
            rows, np.full(n, TARGET[0]), np.full(n, TARGET[1])
        )
    files["two sources at opposite poles"] = (
        header
        + b"".join(rows[:100])
        + _with_positions(rows, np.array([10.0, 190.0]), np.array([89.9, -89.9]))
    )
    files["a source at Dec 100"] = (
        header + b"".join(rows[:100]) + _with_positions(rows, np.array([120.0]), np.array([100.0]))
    )
    files["48 MB of # comment lines"] = header + b"# junk comment line\n" * 2_500_000 + rows[0]
    files["49 MB of real rows (~350k sources)"] = header + b"".join(rows) * (
        49_000_000 // len(b"".join(rows))
    )
    files["1 MB of random bytes after a header"] = header + np.random.default_rng(1).bytes(1 << 20)
    paths = {}
    for i, (name, data) in enumerate(files.items()):
        paths[name] = out / f"{i:02d}.cat"
        paths[name].write_bytes(data)
    return paths


def run_one(path: Path) -> None:
    """The child: warm up, then one job's calibration under the budget; prints JSON."""
    from celery.exceptions import SoftTimeLimitExceeded  # noqa: F401 (as the worker has it)

    from config import settings
    from workers import calibration
    from workers.budget import memory_budget

    calibration.warm_up()
    before = _peak_rss_mb()
    cfg = settings()
    t0 = time.perf_counter()
    try:
        with memory_budget(cfg.job_memory_mb):
            result, _ = calibration._calibrate("bench", path, TARGET, {"no_plot": True}, [])
        outcome = f"succeeded: {result['survey']} {result['filter']} mag {result['mag']:.3f}"
    except Exception as e:
        reason = calibration._reason(e, cfg)
        outcome = "error: " + repr(e) if reason is None else "failed: " + reason[0]
    seconds = time.perf_counter() - t0
    peak = _peak_rss_mb()
    print(
        json.dumps(
            {"seconds": seconds, "peak_mb": peak, "job_mb": peak - before, "outcome": outcome}
        )
    )


def _peak_rss_mb() -> float:
    """This process's peak resident size so far (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    from refcats.gaia_demo import build_gaia_demo

    with tempfile.TemporaryDirectory(prefix="calserv-hostile-") as tmp:
        tmp = Path(tmp)
        build_gaia_demo(tmp / "refcats")
        env = {
            **os.environ,
            "CALSERV_REFCAT_DIR": str(tmp / "refcats"),
            "CALSERV_ENV": os.environ.get("CALSERV_ENV", "development"),
        }
        budget = env.get("CALSERV_JOB_MEMORY_MB", "1024")
        lines = [
            f"Hostile uploads, one fresh worker-like process each (job memory budget {budget} MB)",
            "",
            f"{'file':<38} {'size':>9} {'peak RSS':>9} {'job +RSS':>9} {'time':>7}  outcome",
        ]
        print("\n".join(lines), flush=True)
        for name, path in hostile_files(tmp).items():
            proc = subprocess.Popen(
                [sys.executable, __file__, "--one", str(path)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            stdout, _ = proc.communicate()
            try:
                got = json.loads(stdout.decode().strip().splitlines()[-1])
            except (IndexError, ValueError):
                died, nan = f"process died ({proc.returncode})", float("nan")
                got = {"seconds": nan, "peak_mb": nan, "job_mb": nan, "outcome": died}
            size = path.stat().st_size
            line = (
                f"{name:<38} {size / 1e6:>7.2f}MB {got['peak_mb']:>7.0f}MB "
                f"{got['job_mb']:>7.0f}MB {got['seconds']:>6.2f}s  {got['outcome'][:80]}"
            )
            lines.append(line)
            print(line, flush=True)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "hostile.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one)
    else:
        main()
