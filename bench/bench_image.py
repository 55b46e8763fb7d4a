"""Image uploads end to end in the worker code path, beside the real Source Extractor.

For 2k x 2k and 4k x 4k float32 frames (rendered stars of a synthetic B,V,R,I survey, ingested
into a temporary reference store) this runs, each in a fresh process, on one core:

- calserv: `workers.calibration._calibrate` on the stored upload, exactly what a Celery task
  runs — decode, sep background/extraction/FWHM/aperture photometry, WCS check, reference
  footprint query, crossmatch, zero point, forced photometry of the alert (noPlot=1); and once
  more with the calibration plot and the cutout (noPlot=0);
- `source-extractor` on the same FITS file with the same detection settings (DETECT_THRESH 3,
  DETECT_MINAREA 5, DEBLEND_NTHRESH 16), MAG_AUTO and MAG_APER: extraction and photometry
  only, no calibration.

Prints a table of median CPU time (user + system, one core) of a warm worker process and of
its first task, with the wall time beside it (it varies with the load of this shared machine),
peak RSS (the process's maximum resident set, imports included) and the CPU ratio
calserv / source-extractor. Targets: 4k x 4k <= 3 s on one core, <= 1 GB.

    .venv/bin/python bench/bench_image.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CENTRE = (210.0, 54.3)
PIXEL_SCALE = 0.8
STARS_PER_MPIX = 1500
ONE_CORE = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SEX_PARAMS = "NUMBER X_IMAGE Y_IMAGE ALPHA_J2000 DELTA_J2000 MAG_AUTO MAGERR_AUTO MAG_APER "
SEX_PARAMS += "MAGERR_APER FLAGS FLUX_MAX FWHM_IMAGE"


def make_field(workdir: Path, size: int, seed: int = 1) -> dict:
    """Render a size x size frame and write its reference survey; returns paths and the alert."""
    from simfields.render import render_frame, tan_wcs

    rng = np.random.default_rng(seed)
    n = int(STARS_PER_MPIX * size * size / 1e6)
    half = size * PIXEL_SCALE / 3600 / 2 * 1.05
    ra = CENTRE[0] + rng.uniform(-half, half, n) / np.cos(np.radians(CENTRE[1]))
    dec = CENTRE[1] + rng.uniform(-half, half, n)
    v = 12 + 7 * rng.power(2.5, n)
    bv = rng.uniform(0.1, 1.6, n)
    vr = 0.55 * bv
    ri = 0.5 * vr
    bands = {"B": v + bv, "V": v, "R": v - vr, "I": v - vr - ri}
    csv = workdir / f"ref-{size}.csv"
    cols = ["ra", "dec"] + [c for b in bands for c in (b, f"{b}_err")]
    table = np.column_stack(
        [ra, dec] + [a for b in bands.values() for a in (b, 0.01 + 0.02 * np.exp((b - 18) / 1.2))]
    )
    np.savetxt(csv, table, delimiter=",", header=",".join(cols), comments="", fmt="%.7f")
    target = (CENTRE[0] + 0.002, CENTRE[1] - 0.003)
    wcs = tan_wcs(*CENTRE, (size, size), PIXEL_SCALE)
    inst = np.append(bands["R"] + 0.07 * (vr - 0.5) - 25.3, 17.0 - 25.3)
    frame = render_frame(
        wcs,
        (size, size),
        np.append(ra, target[0]),
        np.append(dec, target[1]),
        inst,
        fwhm_px=3.2,
        sky_adu=600.0,
        seed=seed,
    )
    fits_path = workdir / f"frame-{size}.fits"
    fits_path.write_bytes(frame.to_fits())
    return {"fits": str(fits_path), "ref": str(csv), "target": target, "stars": n}


def make_and_ingest(workdir: Path, size: int) -> dict:
    """Child process (the parent stays small, so that its children's peak RSS is their own)."""
    from refcats.ingest import ingest

    field = make_field(workdir, size)
    field["refdir"] = str(workdir / f"refcats-{size}")
    ingest(Path(field["refdir"]), "BENCH", Path(field["ref"]), ["B", "V", "R", "I"])
    return field


def measure_worker(fits_path: str, target: tuple[float, float], no_plot: bool) -> dict:
    """Child process: the Celery task's code path on one stored upload, twice.

    The first (cold) run pays the lazy imports (astropy.io.fits, astropy.wcs, pyarrow...) and
    the reference store's first reads; a worker process pays them once and keeps them, so the
    second (warm) run is what each task costs.
    """
    from workers.calibration import _blobs, _calibrate  # the worker's imports are not timed

    upload = "uploads/bench.fits"  # stored as the web tier would, in the local file store
    _blobs().put(upload, Path(fits_path).read_bytes())

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    params = {"match_dist": None, "force_filter": None, "no_plot": no_plot}
    runs = []
    for _ in range(2):
        before = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        result, _ = _calibrate("bench", upload, target, params, [])
        seconds = time.perf_counter() - t0
        runs.append((_cpu(resource.getrusage(resource.RUSAGE_SELF)) - _cpu(before), seconds))
    return {
        "cold_cpu": runs[0][0],
        "cpu": runs[1][0],
        "seconds": runs[1][1],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "baseline_rss_mb": baseline / 1024,
        "mag": result["mag"],
        "sources": int(result["log"][0].split()[1]),
    }


def run_worker(fits_path: str, target, no_plot: bool, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", fits_path, json.dumps(target)]
    if not no_plot:
        cmd.append("--plots")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_sextractor(fits_path: str, workdir: Path) -> dict:
    par = workdir / "bench.param"
    par.write_text("\n".join(SEX_PARAMS.split()) + "\n")
    conv = workdir / "default.conv"
    conv.write_text("CONV NORM\n1 2 1\n2 4 2\n1 2 1\n")
    cat = workdir / "sex.cat"
    cmd = [
        "source-extractor", fits_path, "-c", "/dev/null",
        "-PARAMETERS_NAME", str(par), "-FILTER_NAME", str(conv),
        "-STARNNW_NAME", "/usr/share/source-extractor/default.nnw",
        "-CATALOG_NAME", str(cat), "-CATALOG_TYPE", "ASCII_HEAD",
        "-DETECT_THRESH", "3", "-ANALYSIS_THRESH", "3", "-DETECT_MINAREA", "5",
        "-DEBLEND_NTHRESH", "16", "-DEBLEND_MINCONT", "0.005",
        "-PHOT_APERTURES", "5", "-SATUR_LEVEL", "60000", "-GAIN", "1.0",
        "-PIXEL_SCALE", str(PIXEL_SCALE), "-SEEING_FWHM", str(3.2 * PIXEL_SCALE),
        "-MAG_ZEROPOINT", "0", "-VERBOSE_TYPE", "QUIET", "-CHECKIMAGE_TYPE", "NONE",
        "-NTHREADS", "1",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **ONE_CORE})
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if status:
        raise RuntimeError(f"source-extractor failed with status {status}")
    sources = sum(1 for line in cat.open() if not line.startswith("#"))
    return {
        "seconds": seconds,
        "cpu": _cpu(usage),
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "sources": sources,
    }


def _cpu(usage) -> float:
    """CPU seconds (user + system): on a shared machine, steadier than the wall clock."""
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="2048,4096")
    ap.add_argument("--child", nargs=2, metavar=("FITS", "TARGET"), help=argparse.SUPPRESS)
    ap.add_argument("--plots", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--make", nargs=2, metavar=("SIZE", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make:
        print(json.dumps(make_and_ingest(Path(args.make[1]), int(args.make[0]))))
        return
    if args.child:
        print(
            json.dumps(
                measure_worker(args.child[0], tuple(json.loads(args.child[1])), not args.plots)
            )
        )
        return
    if shutil.which("source-extractor") is None:
        sys.exit("source-extractor is not installed (apt-get install source-extractor)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        workdir = Path(tmp)
        for size in (int(s) for s in args.sizes.split(",")):
            made = subprocess.run(
                [sys.executable, __file__, "--make", str(size), tmp],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            field = json.loads(made.stdout.strip().splitlines()[-1])
            env = {
                **os.environ,
                **ONE_CORE,
                "CALSERV_REFCAT_DIR": field["refdir"],
                "CALSERV_STORAGE_URL": str(workdir / "store"),
                "PYTHONPATH": str(ROOT),
            }
            target = tuple(field["target"])
            ours = [run_worker(field["fits"], target, True, env) for _ in range(args.repeat)]
            plots = run_worker(field["fits"], target, False, env)
            sex = [run_sextractor(field["fits"], workdir) for _ in range(args.repeat)]
            t_ours = float(np.median([r["cpu"] for r in ours]))
            t_sex = float(np.median([r["cpu"] for r in sex]))
            w_ours = float(np.median([r["seconds"] for r in ours]))
            w_sex = float(np.median([r["seconds"] for r in sex]))
            rows.append(
                (
                    f"{size} x {size}",
                    f"{field['stars']:,} / {ours[0]['sources']:,} / {sex[0]['sources']:,}",
                    f"{t_ours:.2f} s ({w_ours:.2f} s)",
                    f"{float(np.median([r['cold_cpu'] for r in ours])):.2f} s",
                    f"{plots['cpu']:.2f} s",
                    f"{max(r['peak_rss_mb'] for r in ours):.0f} MB "
                    f"({ours[0]['baseline_rss_mb']:.0f} after imports)",
                    f"{t_sex:.2f} s ({w_sex:.2f} s)",
                    f"{max(r['peak_rss_mb'] for r in sex):.0f} MB",
                    f"{t_ours / t_sex:.2f}x",
                    f"{ours[0]['mag']:.3f} (truth 17.0)",
                )
            )
    head = (
        "frame", "stars / calserv sources / SExtractor sources", "calserv CPU (wall), noPlot=1",
        "calserv first task CPU",
        "calserv + plot + cutout CPU", "calserv peak RSS", "source-extractor CPU (wall)",
        "SExtractor peak RSS", "CPU ratio calserv / SExtractor", "alert mag",
    )  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
