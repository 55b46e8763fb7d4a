"""Per-frame compute time and accuracy of calib.calibrate() vs STDPipe's photometry.match.

Run in the bench venv (STDPipe is not a runtime dependency):

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install -r requirements.txt -r bench/requirements-bench.txt
    .venv-bench/bin/python bench/bench_calib.py

Both get the same simulated frames (R band, colour term 0.07 (V-R), zero point 25.3, 2%
outliers and blends, saturated stars, junk rows). calserv runs the whole pipeline: cleaning,
automatic radius, all four bands fitted, automatic choice, target. STDPipe is given the answer
(the R band with V-R colour, a 2" radius) and only matches and fits. Accuracy is the mean
absolute error of the zero point at the truth's pivot colour and of the target magnitude.
Prints a table and writes it to bench/results/calib.txt.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calib import calibrate  # noqa: E402
from calib.simulate import simulate_field  # noqa: E402

SIZES = (1_000, 10_000, 50_000)
SEEDS = range(5)
PIVOT = 0.5


def run_calserv(field):
    truth = field.truth
    start = time.perf_counter()
    result = calibrate(field.catalog, [field.reference], truth["target_ra"], truth["target_dec"])
    elapsed = time.perf_counter() - start
    return elapsed, result.fit.zeropoint_at(PIVOT), result.mag


def run_stdpipe(field):
    from stdpipe import photometry

    cat, ref, truth = field.catalog, field.reference, field.truth
    r, r_err = ref.bands["R"]
    colour = ref.bands["V"][0] - r
    start = time.perf_counter()
    m = photometry.match(
        cat.ra, cat.dec, cat.mag, cat.mag_err, cat.flags, ref.ra, ref.dec, r, r_err,
        cat_color=colour, sr=2.0 / 3600, accept_flags=0x03, max_intrinsic_rms=0.1, robust=False,
    )  # fmt: skip
    # Target: nearest source within 2" (STDPipe leaves this to the caller).
    d = np.hypot(
        (cat.ra - truth["target_ra"]) * np.cos(np.radians(cat.dec)), cat.dec - truth["target_dec"]
    )
    i = int(np.argmin(d))
    elapsed = time.perf_counter() - start
    zero = float(np.median(m["zero_fn"](np.zeros(1), np.zeros(1), None)))
    zp_pivot = zero + PIVOT * float(m["color_term"])
    return elapsed, zp_pivot, float(cat.mag[i] + zp_pivot)


def main() -> None:
    runners = {"calserv": run_calserv}
    try:
        import stdpipe  # noqa: F401

        runners["stdpipe"] = run_stdpipe
    except ImportError:
        print("stdpipe not installed: benchmarking calserv alone", file=sys.stderr)
    lines = [
        f"{'sources':>8} {'code':>8} {'ms/frame':>9} {'frames/s':>9} {'|dzp| mmag':>11} "
        f"{'|dmag| mmag':>12} {'speed-up':>9}"
    ]
    for size in SIZES:
        fields = [
            simulate_field(seed, n_stars=size, field_deg=0.33 * np.sqrt(size / 1500))
            for seed in SEEDS
        ]
        stats = {}
        for name, run in runners.items():
            run(fields[0])  # warm-up (imports, caches)
            times, dzp, dmag = [], [], []
            for field in fields:
                elapsed, zp, mag = run(field)
                times.append(elapsed)
                dzp.append(abs(zp - field.truth["zeropoint"]))
                dmag.append(abs(mag - field.truth["target_mag"]))
            stats[name] = (np.median(times), np.mean(dzp), np.mean(dmag))
        for name, (t, dzp, dmag) in stats.items():
            ratio = stats["stdpipe"][0] / t if "stdpipe" in stats else float("nan")
            lines.append(
                f"{size:>8} {name:>8} {t * 1e3:>9.1f} {1 / t:>9.1f} {dzp * 1e3:>11.1f} "
                f"{dmag * 1e3:>12.1f} {ratio:>8.1f}x"
            )
    table = "\n".join(lines)
    print(table)
    out = ROOT / "bench" / "results" / "calib.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")


if __name__ == "__main__":
    main()
