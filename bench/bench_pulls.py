"""Are the quoted errors honest? Pulls (mag - truth) / mag_err of the alert over fresh random
frames, on both paths:

- catalogue: `simfields.sextractor.render_field` (stars drawn on an image and measured by the
  real `source-extractor`, MAG_AUTO), then `calib.calibrate`;
- image: `simfields.render.render_frame` (a synthetic B,V,R,I field, Gaussian PSF integrated over
  pixels, sky and read noise, saturation; SATURATE in the header or not), then
  `calib.imaging.calibrate_image` (sep extraction, forced photometry).

Frames vary everything the errors must cover: seeing from undersampled (FWHM 2.2-2.5 px, a
third of the frames) to 5 px, the alert's pixel phase, star density, the alert's brightness
from saturated to near the limit, and a catalogued neighbour 0.7-3 FWHM away on a third of
them. Seeds are fresh at every run (printed; ``--seed`` replays one).

Prints, per path and for the undersampled frames apart: detections, RMS of the pulls, how
many lie beyond 3 and 5 sigma, how many beyond 5 carry no flag, and limits that claim the
alert fainter than it is by more than 0.3 mag (a 50 % completeness limit often misses a star
0.1 mag brighter than itself). Honest errors: RMS 0.9-1.2 and nothing beyond 5 sigma
unflagged. ``--code DIR`` imports calib from another checkout (a before/after comparison on
the same seeds; the frames always come from this checkout's `simfields`, so that checkout
needs `calib.simulate.true_magnitudes`).

    .venv/bin/python bench/bench_pulls.py [--frames 100] [--seed N] [--code DIR]
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def catalogue_frame(rng: np.random.Generator) -> dict:
    """One rendered catalogue frame and its alert's truth."""
    from calib import calibrate
    from simfields.sextractor import render_field

    under = rng.uniform() < 1 / 3
    fwhm = rng.uniform(2.2, 2.5) if under else rng.uniform(2.5, 5.0)
    target = rng.uniform(9.5, 11.5) if rng.uniform() < 0.15 else rng.uniform(12.0, 18.0)
    neighbour = None
    if rng.uniform() < 1 / 3:
        neighbour = (rng.uniform(0.7, 3.0) * fwhm, target + rng.uniform(-1.0, 4.0))
    phase = tuple(float(p) for p in rng.uniform(-0.5, 0.5, 2))
    field = render_field(
        int(rng.integers(1 << 31)),
        npix=300,
        fwhm_pix=fwhm,
        density_per_arcmin2=rng.uniform(15, 120),
        target_mag=target,
        alert_phase_px=phase,
        target_neighbour=neighbour,
    )
    t = field.truth
    result = calibrate(field.catalog, [field.reference], t["target_ra"], t["target_dec"])
    return {"result": result, "truth": target, "under": under}


def image_frame(rng: np.random.Generator) -> dict:
    """One rendered FITS frame of a synthetic field and its alert's truth."""
    from calib.image import load_image
    from calib.imaging import calibrate_image
    from calib.reference import RefCatalog
    from simfields.render import render_frame, tan_wcs

    size, scale, zp, k = 512, 0.8, 25.0, 0.07
    centre = (float(rng.uniform(0, 360)), float(rng.uniform(-60, 60)))
    cos_dec = math.cos(math.radians(centre[1]))
    n = int(rng.uniform(300, 900))
    half = size * scale / 3600 / 2 * 1.05
    ra = centre[0] + rng.uniform(-half, half, n) / cos_dec
    dec = centre[1] + rng.uniform(-half, half, n)
    v = 12 + 7.5 * rng.power(2.5, n)
    bv = rng.uniform(0.1, 1.6, n)
    vr, ri = 0.55 * bv, 0.27 * bv
    r = v - vr
    ref = {"ra": ra, "dec": dec, "B": v + bv, "V": v, "R": r, "I": r - ri}
    for b in "BVRI":
        ref[f"{b}_err"] = 0.005 + 0.02 * np.exp((ref[b] - 19.5) / 1.0)
    inst = r + k * (vr - 0.5) - zp
    under = rng.uniform() < 1 / 3
    fwhm = rng.uniform(2.2, 2.5) if under else rng.uniform(2.5, 5.0)
    target = rng.uniform(9.5, 11.5) if rng.uniform() < 0.15 else rng.uniform(12.0, 18.5)
    alert = (
        centre[0] + rng.uniform(-60, 60) / 3600 / cos_dec,
        centre[1] + rng.uniform(-60, 60) / 3600,
    )
    ra, dec, inst = np.append(ra, alert[0]), np.append(dec, alert[1]), np.append(inst, target - zp)
    if rng.uniform() < 1 / 3:  # a catalogued neighbour
        sep = rng.uniform(0.7, 3.0) * fwhm * scale
        angle = rng.uniform(0, 2 * math.pi)
        nra = alert[0] + sep * math.cos(angle) / 3600 / cos_dec
        ndec = alert[1] + sep * math.sin(angle) / 3600
        nr = target + rng.uniform(-1.0, 4.0)
        ra, dec, inst = np.append(ra, nra), np.append(dec, ndec), np.append(inst, nr - zp)
        for b, m in (("B", nr + 1.2), ("V", nr + 0.5), ("R", nr), ("I", nr - 0.25)):
            ref[b] = np.append(ref[b], m)
            ref[f"{b}_err"] = np.append(ref[f"{b}_err"], 0.005)
        ref["ra"], ref["dec"] = np.append(ref["ra"], nra), np.append(ref["dec"], ndec)
    frame = render_frame(
        tan_wcs(*centre, (size, size), scale), (size, size), ra, dec, inst, fwhm_px=fwhm,
        sky_adu=rng.uniform(200, 2000), write_saturate=bool(rng.uniform() < 0.5),
        seed=int(rng.integers(1 << 31)),
    )  # fmt: skip
    survey = RefCatalog.from_columns("SYNTH", ref)
    cal = calibrate_image(load_image(frame.to_fits()), lambda *_: [survey], *alert)
    return {"result": cal.result, "truth": target, "under": under}


def summarise(rows: list[dict]) -> dict:
    det = [r for r in rows if "result" in r and not r["result"].limit]
    lim = [r for r in rows if "result" in r and r["result"].limit]
    pulls = np.array([(r["result"].mag - r["truth"]) / r["result"].mag_err for r in det])
    flagged = np.array([bool(r["result"].target_flags) for r in det], dtype=bool)
    big = np.abs(pulls) > 5 if len(pulls) else np.zeros(0, dtype=bool)
    return {
        "frames": len(rows),
        "failed": sum("error" in r for r in rows),
        "detections": len(det),
        "rms": float(np.sqrt(np.mean(pulls**2))) if len(pulls) else math.nan,
        "rms_clean": float(np.sqrt(np.mean(pulls[~flagged] ** 2))) if (~flagged).any() else 0,
        ">3": int(np.count_nonzero(np.abs(pulls) > 3)),
        ">5": int(np.count_nonzero(big)),
        ">5 unflagged": int(np.count_nonzero(big & ~flagged)),
        "limits": len(lim),
        "bad limits": sum(r["result"].mag > r["truth"] + 0.3 for r in lim),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=100, help="frames per path")
    parser.add_argument("--seed", type=int, default=None, help="replay this run's seed")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout to import calib from")
    parser.add_argument("--paths", default="catalogue,image")
    parser.add_argument("--worst", type=int, default=5, help="list the worst pulls")
    args = parser.parse_args()
    sys.path[:0] = [str(args.code.resolve()), str(ROOT)]  # calib from --code, simfields here
    seed = secrets.randbits(32) if args.seed is None else args.seed
    print(f"seed {seed} (--seed {seed} replays), calib from {args.code.resolve()}")
    makers = {"catalogue": catalogue_frame, "image": image_frame}
    header = ("path", "frames", "failed", "detections", "rms", "rms_clean", ">3", ">5",
              ">5 unflagged", "limits", "bad limits")  # fmt: skip
    print("".join(f"{h:>13}" for h in header))
    for path in args.paths.split(","):
        rng = np.random.default_rng([seed, len(path)])
        rows, t0 = [], time.perf_counter()
        for _ in range(args.frames):
            try:
                rows.append(makers[path](rng))
            except Exception as exc:  # a refusal is counted, anything else shown
                rows.append({"error": f"{type(exc).__name__}: {exc}"})
        for name, subset in (
            (path, rows),
            (f"{path} <2.5px", [r for r in rows if r.get("under")]),
        ):
            s = summarise(subset)
            cells = [name] + [s[h] for h in header[1:]]
            print("".join(f"{c:>13.2f}" if isinstance(c, float) else f"{c!s:>13}" for c in cells))
        worst = sorted(
            (r for r in rows if "result" in r and not r["result"].limit),
            key=lambda r: -abs((r["result"].mag - r["truth"]) / r["result"].mag_err),
        )[: args.worst]
        for r in worst:
            res = r["result"]
            print(
                f"    worst: truth {r['truth']:.2f} measured {res.mag:.3f} ± {res.mag_err:.3f} "
                f"({(res.mag - r['truth']) / res.mag_err:+.1f} sigma) {res.target_flags}"
            )
        errors = [r["error"] for r in rows if "error" in r]
        for e in sorted(set(errors)):
            print(f"    failed {errors.count(e)}x: {e[:150]}")
        print(f"    {path}: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
