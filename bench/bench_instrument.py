"""Instrument models, checks, history prior and the consistent light curve, against known truth.

Ten simulated observatories follow one transient for 60 nights. Each has its own colour term
(-0.10 ... +0.15 in V-R), zero point and zero-point trend, depth and seeing; 5 % of frames are
cloudy (0.3-1.5 mag of grey extinction: a lower zero point, a shallower frame) and 2 % were
taken through V while the header says R (forceFilter SIM/R, as the header gives it). The
transient is bluer than the field stars (V-R = 0 against a median of 0.45), so each
observatory's colour term shifts its points by about -0.45 k: the systematic offsets a combined
light curve suffers from. Frames go through calserv's code in time order as the worker runs
them: `calib.calibrate` (with the instrument's history as its prior), `check_frame` against the
model built from the frames before it, then the model rebuilt with it.

The first ``--rendered`` observatories (default 2) are rendered as images and measured by the
real Source Extractor (`simfields.sextractor`, seeing varying from night to night, 8 % of
frames with doubled FWHM); the others are `calib.simulate` catalogues (no FWHM column, so the
seeing check has no input there).

Reports:
1. recovered colour terms against the truth;
2. the checks: recall of the cloudy frames (zeropoint_low) and the wrong-filter frames
   (colour_term_mismatch), seeing_poor on the doubled-FWHM frames, and the false-alarm rate on
   good frames (once the model has 5 frames);
3. the combined light curve's scatter around the truth: raw, aligned (`aligned=1`), and aligned
   without the points flagged as outliers;
4. the history prior on fresh few-star frames (automatic band choice among R and V): wrong band
   rate and the error at the transient, with and without the prior.

    .venv/bin/python bench/bench_instrument.py            # ~4 min on one core
    .venv/bin/python bench/bench_instrument.py --rendered 0 --nights 30   # ~1 min

Writes the tables to bench/results/instrument.txt.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calib import CalibrationError, calibrate, read_catalog  # noqa: E402
from calib.instrument import FLAGS, Frame, band_history, build_model, check_frame  # noqa: E402
from calib.intercalibration import Point, outliers, pair_offsets, system_offsets  # noqa: E402
from calib.simulate import simulate_field  # noqa: E402
from simfields.sextractor import render_field, sextractor_available  # noqa: E402

N_SITES = 10
CLOUDY, WRONG_FILTER, POOR_SEEING = 0.05, 0.02, 0.08
TRANSIENT_COLOUR = 0.0  # V-R of the transient; field stars have a median of about 0.45
EXPTIME = 60.0
MJD0 = 60300.0


def transient_r(mjd: float) -> float:
    """The transient's R magnitude: a rise to 14.8 at day 18, then a decline."""
    t = mjd - MJD0
    return 17.0 - 2.2 * math.exp(-0.5 * ((t - 18.0) / 9.0) ** 2) + 0.01 * t


@dataclass
class Site:
    name: str
    colour_term: float
    zeropoint: float
    trend: float  # mag per year
    depth: float  # simulate: 5-sigma limit; rendered: set by sky and zero point
    fwhm_pix: float
    rendered: bool
    frames: list[Frame] = field(default_factory=list)


@dataclass
class Observed:
    site: str
    mjd: float
    kind: str  # good | cloudy | wrong_filter | poor_seeing
    flags: list[str]
    checked: bool
    mag: float | None
    mag_err: float | None
    limit: bool


def make_sites(rng: np.random.Generator, rendered: int) -> list[Site]:
    terms = np.linspace(-0.10, 0.15, N_SITES)
    return [
        Site(
            name=f"site{i:02d}",
            colour_term=float(terms[i]),
            zeropoint=float(rng.uniform(24.3, 25.7)),
            trend=float(rng.uniform(-0.4, 0.4)),
            depth=float(rng.uniform(18.8, 20.5)),
            fwhm_pix=float(rng.uniform(2.5, 3.5)),
            rendered=i < rendered,
        )
        for i in range(N_SITES)
    ]


def frame_of(site: Site, mjd: float, kind: str, seed: int, rng: np.random.Generator):
    """(catalogue, reference, alert position) of one frame of `site`."""
    cloud = rng.uniform(0.3, 1.5) if kind == "cloudy" else 0.0
    band = "V" if kind == "wrong_filter" else "R"
    zp = site.zeropoint + site.trend * (mjd - MJD0) / 365.25 - cloud
    target = transient_r(mjd) + (TRANSIENT_COLOUR if band == "V" else 0.0)
    if site.rendered:
        seeing = site.fwhm_pix * (2.0 if kind == "poor_seeing" else rng.uniform(0.9, 1.1))
        f = render_field(
            seed, npix=300, pixscale=1.0, fwhm_pix=seeing, band=band, zeropoint=zp,
            colour_term=site.colour_term, colour_pivot=TRANSIENT_COLOUR, target_mag=target,
            centre=(120.0, 30.0), faint_mag=21.5, ref_depth_mag=20.5, sky=80.0,
        )  # fmt: skip
        return f.catalog, f.reference, f.truth
    f = simulate_field(
        seed, n_stars=900, band=band, zeropoint=zp, colour_term=site.colour_term,
        colour_pivot=TRANSIENT_COLOUR, limit_mag=site.depth - cloud, target_mag=target,
    )  # fmt: skip
    return read_catalog(f.ascii_head()), f.reference, f.truth


def run_nights(sites: list[Site], nights: int, seed: int) -> list[Observed]:
    rng = np.random.default_rng(seed)
    schedule = []
    for night in range(nights):
        for site in sites:
            if rng.uniform() < 0.8:
                mjd = MJD0 + night + rng.uniform(0.0, 0.35)
                u = rng.uniform()
                kind = (
                    "cloudy" if u < CLOUDY
                    else "wrong_filter" if u < CLOUDY + WRONG_FILTER
                    else "poor_seeing" if site.rendered and u < CLOUDY + WRONG_FILTER + POOR_SEEING
                    else "good"
                )  # fmt: skip
                schedule.append((mjd, site, kind))
    schedule.sort(key=lambda s: s[0])
    out = []
    for i, (mjd, site, kind) in enumerate(schedule):
        catalog, reference, truth = frame_of(site, mjd, kind, seed * 100_000 + i, rng)
        model = build_model(site.frames) if site.frames else None
        known = band_history(model, mjd, EXPTIME)
        try:
            r = calibrate(
                catalog, [reference], truth["target_ra"], truth["target_dec"],
                force_filter="SIM/R", allowed_filters=["R", "V"],
                instrument_history={"R": known} if known else None,
            )  # fmt: skip
        except CalibrationError:
            out.append(Observed(site.name, mjd, kind, [], False, None, None, False))
            continue
        frame = Frame(mjd, r.zeropoint, r.zeropoint_err, r.colour_term, r.colour_term_err,
                      r.limiting_mag, r.fwhm, EXPTIME)  # fmt: skip
        checks = check_frame(model, frame)
        site.frames.append(frame)
        out.append(
            Observed(
                site.name,
                mjd,
                kind,
                checks.flags if checks else [],
                checks is not None,
                r.mag,
                r.mag_err,
                r.limit,
            )
        )
    return out


def colour_table(sites: list[Site]) -> list[str]:
    lines = [
        "site    rendered  frames  colour term: truth  recovered         (rec-truth)/err",
        "------  --------  ------  ------------------  ----------------  ---------------",
    ]
    pulls = []
    for s in sites:
        m = build_model(s.frames)
        pull = (m.colour_term - s.colour_term) / m.colour_term_err
        pulls.append(pull)
        lines.append(
            f"{s.name}  {'yes' if s.rendered else 'no':8s}  {m.n_frames:6d}  "
            f"{s.colour_term:+18.3f}  {m.colour_term:+.3f} ± {m.colour_term_err:.3f}    "
            f"{pull:+15.1f}"
        )
    err = [build_model(s.frames).colour_term - s.colour_term for s in sites]
    lines.append(
        f"rms (recovered - truth) = {np.sqrt(np.mean(np.square(err))):.4f}; "
        f"rms pull = {np.sqrt(np.mean(np.square(pulls))):.2f}"
    )
    return lines


def flag_table(observed: list[Observed]) -> list[str]:
    checked = [o for o in observed if o.checked]

    def rate(kind: str, flag: str | None) -> str:
        group = [o for o in checked if o.kind == kind]
        if not group:
            return f"{kind:14s} {'-':>6s}"
        hit = sum((flag in o.flags) if flag else bool(o.flags) for o in group)
        return f"{kind:14s} {len(group):6d}  {flag or 'any flag':22s} {hit / len(group):6.1%}"

    good = [o for o in checked if o.kind == "good"]
    false = {f: sum(f in o.flags for o in good) / max(len(good), 1) for f in FLAGS}
    lines = [
        "frames checked (model >= 5 frames)  n       flag                   recall",
        rate("cloudy", "zeropoint_low"),
        rate("cloudy", "depth_low"),
        rate("wrong_filter", "colour_term_mismatch"),
        rate("poor_seeing", "seeing_poor"),
        f"good frames {len(good)}: any flag "
        f"{sum(bool(o.flags) for o in good) / max(len(good), 1):.1%} (false alarms) = "
        + ", ".join(f"{k} {v:.1%}" for k, v in false.items()),
        f"failed calibrations: {sum(o.mag is None for o in observed)} of {len(observed)}",
    ]
    return lines


def lightcurve_table(observed: list[Observed]) -> list[str]:
    det = [o for o in observed if o.mag is not None and not o.limit]
    points = [Point(o.site, "R", o.mjd, o.mag, o.mag_err) for o in det]
    pairs = pair_offsets(points)
    systems = {s.observatory: s for s in system_offsets(points, pairs)}
    flagged = outliers(points, pairs)
    truth = np.array([transient_r(o.mjd) for o in det])
    raw = np.array([o.mag for o in det]) - truth
    shift = np.array([systems[o.site].offset or 0.0 for o in det])
    aligned = raw - shift
    keep = ~np.array(flagged)
    good = np.array([o.kind in ("good", "poor_seeing") for o in det])

    def rms(x):  # about the truth, after the one offset no light curve can know (its system)
        return float(np.sqrt(np.mean(np.square(x - np.median(x)))))

    def mad(x):
        return float(1.4826 * np.median(np.abs(x - np.median(x))))

    sites = np.array([o.site for o in det])

    def site_spread(x):  # the observatories' systematic offsets from the truth: their medians
        medians = [np.median(x[(sites == s) & good]) for s in systems]
        return float(np.std(medians))

    def chi(x):  # scatter in units of the quoted errors (1 when errors say all)
        z = (x - np.median(x)) / np.array([o.mag_err for o in det])
        return float(np.sqrt(np.mean(z[keep & good] ** 2)))

    kinds = np.array([o.kind for o in det])
    flags = np.array(flagged)

    def share(kind):
        chosen = kinds == kind
        return f"{flags[chosen].mean():.0%} of {chosen.sum()}" if chosen.any() else "none"

    lines = [
        f"{len(det)} detections from {len(systems)} observatories, {len(pairs)} pair offsets",
        "light curve                         rms (mag)  robust std  on good frames only (rms)",
        f"raw                                 {rms(raw):9.4f}  {mad(raw):10.4f}  "
        f"{rms(raw[good]):9.4f}",
        f"aligned=1                           {rms(aligned):9.4f}  {mad(aligned):10.4f}  "
        f"{rms(aligned[good]):9.4f}",
        f"aligned, outliers dropped           {rms(aligned[keep]):9.4f}  "
        f"{mad(aligned[keep]):10.4f}  {rms(aligned[keep & good]):9.4f}",
        f"spread of the observatories' offsets from the truth (std of their medians): raw "
        f"{site_spread(raw):.4f}, aligned {site_spread(aligned):.4f}; scatter in units of the "
        f"quoted errors (good points, outliers dropped): raw {chi(raw):.2f}, aligned "
        f"{chi(aligned):.2f}",
        f"outlier flags: {int(flags.sum())} points; wrong-filter detections flagged "
        f"{share('wrong_filter')}, cloudy {share('cloudy')} (calibrated, so mostly right), "
        f"good {share('good')}",
    ]
    return lines


def prior_table(seed: int, per_site: int) -> list[str]:
    """Fresh few-star frames of each site (R or V), after 15 frames of history per band."""
    rng = np.random.default_rng(seed)
    terms = np.linspace(-0.10, 0.15, N_SITES)
    counts = {False: [0, 0, []], True: [0, 0, []]}  # frames, wrong band, errors at the target
    for i in range(N_SITES):
        zp = {"R": rng.uniform(24.5, 25.5), "V": rng.uniform(24.2, 25.2)}
        k = {"R": float(terms[i]), "V": float(-terms[i] / 2)}
        history = {}
        for band in ("R", "V"):
            frames = []
            for j in range(15):
                f = simulate_field(
                    int(rng.integers(1 << 30)), n_stars=800, band=band, zeropoint=zp[band],
                    colour_term=k[band], colour_pivot=0.45,
                )  # fmt: skip
                r = calibrate(read_catalog(f.ascii_head()), [f.reference], 150.1, 2.2,
                              force_filter=f"SIM/{band}")  # fmt: skip
                frames.append(Frame(MJD0 + j, r.zeropoint, r.zeropoint_err, r.colour_term,
                                    r.colour_term_err, r.limiting_mag, None, EXPTIME))  # fmt: skip
            history[band] = band_history(build_model(frames), MJD0 + 20, EXPTIME)
        for _ in range(per_site):
            band = "R" if rng.uniform() < 0.5 else "V"
            f = simulate_field(
                int(rng.integers(1 << 30)), n_stars=int(rng.integers(40, 90)), band=band,
                zeropoint=zp[band], colour_term=k[band], colour_pivot=0.45, field_deg=0.1,
                limit_mag=19.5, ref_limit_mag=17.0, saturation_mag=11.0, n_junk=2,
            )  # fmt: skip
            catalog = read_catalog(f.ascii_head())
            for prior in (False, True):
                try:
                    r = calibrate(catalog, [f.reference], 150.1, 2.2, allowed_filters=["R", "V"],
                                  instrument_history=history if prior else None)  # fmt: skip
                except CalibrationError:
                    continue
                if r.npoints >= 10:
                    continue
                c = counts[prior]
                c[0] += 1
                c[1] += r.filter != band
                c[2].append(r.mag - f.truth["target_mag"])
    lines = ["few-star frames (< 10 stars)   frames  wrong band  error at the transient: rms  "
             "median |err|  worst"]  # fmt: skip
    for prior, label in ((False, "without history"), (True, "with history prior")):
        n, wrong, err = counts[prior]
        err = np.abs(np.array(err))
        lines.append(
            f"{label:30s} {n:6d}  {wrong / max(n, 1):10.1%}  {np.sqrt(np.mean(err**2)):27.4f}  "
            f"{np.median(err):12.4f}  {err.max():5.2f}"
        )
    return lines


def speed_table(seed: int) -> list[str]:
    """What the consistency costs a light-curve request, beside serialising its rows to JSON
    (the floor every answer pays)."""
    rng = np.random.default_rng(seed)
    warm = [Point("a", "R", MJD0, 15.0, 0.01), Point("b", "R", MJD0, 15.1, 0.01)]
    outliers(warm, pair_offsets(warm))  # first-call costs out of the table
    lines = ["light-curve points  observatories  offsets+alignment+outliers  rows to JSON  ratio"]
    for n, sites in ((100, 5), (1000, 10), (3000, 20)):
        rows = [
            {"observatory": f"o{rng.integers(sites)}", "filter": "RV"[rng.integers(2)],
             "mjd": MJD0 + rng.uniform(0, n / 10), "mag": 15 + rng.normal(0, 0.05),
             "magerr": 0.03, "date_obs": "2024-01-01T00:00:00.000Z", "survey": "APASS",
             "caliberr": 0.01, "followup_id": 1, "warnings": [], "target_flags": []}
            for _ in range(n)
        ]  # fmt: skip
        t0 = time.perf_counter()
        points = [Point(r["observatory"], r["filter"], r["mjd"], r["mag"], r["magerr"])
                  for r in rows]  # fmt: skip
        pairs = pair_offsets(points)
        system_offsets(points, pairs)
        outliers(points, pairs)
        t1 = time.perf_counter()
        json.dumps(rows)
        t2 = time.perf_counter()
        lines.append(
            f"{n:18d}  {sites:13d}  {1e3 * (t1 - t0):23.1f} ms  {1e3 * (t2 - t1):9.1f} ms  "
            f"{(t1 - t0) / (t2 - t1):5.0f}x"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nights", type=int, default=60)
    ap.add_argument("--rendered", type=int, default=2, help="observatories rendered as images")
    ap.add_argument("--few-star-frames", type=int, default=30, help="per observatory")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rendered = args.rendered if sextractor_available() else 0
    t0 = time.perf_counter()
    sites = make_sites(np.random.default_rng(args.seed), rendered)
    observed = run_nights(sites, args.nights, args.seed)
    t1 = time.perf_counter()
    prior = prior_table(args.seed + 1, args.few_star_frames)
    t2 = time.perf_counter()
    text = "\n".join(
        [
            f"bench_instrument: {N_SITES} observatories ({rendered} rendered through "
            f"source-extractor), {args.nights} nights, seed {args.seed}; "
            f"{len(observed)} frames in {t1 - t0:.0f} s, prior section {t2 - t1:.0f} s",
            "",
            "1. colour terms (V-R) recovered by the instrument model",
            *colour_table(sites),
            "",
            "2. checks against each instrument's history",
            *flag_table(observed),
            "",
            "3. combined light curve around the truth (one global offset removed)",
            *lightcurve_table(observed),
            "",
            "4. history as a prior",
            *prior,
            "",
            "5. cost of the consistent light curve per request",
            *speed_table(args.seed),
        ]
    )
    print(text)
    out = ROOT / "bench" / "results" / "instrument.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
