"""An instrument's own history: the model of one (observatory, filter) learned from its frames,
and the checks of a new frame against it.

Every observatory sends hundreds of frames through the same telescope, camera and filter, so
what one frame cannot tell alone (its colour term on ten stars, whether a zero point 0.4 mag low
is a cloud) its history can. The model keeps, per (observatory, filter):

- the colour term, as a weighted mean over frames with an outlier-resistant clip and the
  frame-to-frame scatter its errors do not explain (a wrong-filter frame must not move it);
- the zero point's median, its linear trend in time (mirror ageing, a new coating) and its
  scatter around that trend; when the catalogue magnitudes scale with the exposure time (counts
  rather than count rates) the zero point is compared at the same exposure time;
- the depth (limiting magnitude, scaled to the same exposure time) and the FWHM as medians and
  robust scatters.

Pure numpy; the worker stores the model and the web tier shows it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .stats import median_and_robust_std

#: Checks are made once the model has this many frames.
MIN_FRAMES = 5
#: Frames a model is built from: the most recent ones (older history says less about today).
MAX_FRAMES = 1000
#: A trend is fitted from this many frames spanning at least TREND_MIN_DAYS.
TREND_MIN_FRAMES = 10
TREND_MIN_DAYS = 30.0
#: A flag is raised beyond this many of the instrument's own standard deviations.
CHECK_SIGMA = 3.0
#: ... and never for smaller departures than these (a young model's scatter can be tiny).
MIN_ZEROPOINT_OFFSET = 0.05  # mag
MIN_COLOUR_TERM_OFFSET = 0.05
MIN_DEPTH_OFFSET = 0.3  # mag
MIN_FWHM_RATIO = 1.25
#: Depth of a background-limited frame grows as 1.25 log10(exposure time).
DEPTH_PER_DEX = 1.25
ZEROPOINT_PER_DEX = 2.5
#: The flags a check can raise (`calib.schema` describes them in words).
FLAGS = ("zeropoint_low", "zeropoint_high", "colour_term_mismatch", "depth_low", "seeing_poor")


@dataclass(frozen=True)
class Frame:
    """What one calibrated frame tells about its instrument (None: not measured)."""

    mjd: float
    zeropoint: float
    zeropoint_err: float | None = None
    colour_term: float | None = None
    colour_term_err: float | None = None
    depth: float | None = None
    fwhm: float | None = None
    exptime: float | None = None


@dataclass(frozen=True)
class InstrumentModel:
    """The statistics of an (observatory, filter)'s frames; see the module docstring.

    ``zeropoint_median`` and ``depth_median`` are at ``exptime_ref`` seconds when
    ``exptime_scaling`` (the catalogue's magnitudes are counts, not count rates); the zero
    point's ``zeropoint_trend`` is in mag per year around ``reference_mjd``."""

    n_frames: int
    first_mjd: float
    last_mjd: float
    reference_mjd: float
    colour_term: float | None
    colour_term_err: float | None
    colour_term_scatter: float | None
    n_colour_frames: int
    zeropoint_median: float
    zeropoint_scatter: float
    zeropoint_trend: float
    exptime_scaling: bool
    exptime_ref: float | None
    depth_median: float | None
    depth_scatter: float | None
    fwhm_median: float | None
    fwhm_scatter: float | None

    def expected_zeropoint(self, mjd: float, exptime: float | None) -> float:
        """The zero point this instrument would have had at `mjd` for this exposure time."""
        zp = self.zeropoint_median + self.zeropoint_trend * (mjd - self.reference_mjd) / 365.25
        return zp + ZEROPOINT_PER_DEX * _dex(exptime, self.exptime_ref) * self.exptime_scaling

    def expected_depth(self, exptime: float | None) -> float | None:
        if self.depth_median is None:
            return None
        return self.depth_median + DEPTH_PER_DEX * _dex(exptime, self.exptime_ref)

    def to_dict(self) -> dict:
        return {k: _plain(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> InstrumentModel:
        return cls(**{k: values[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Checks:
    """A frame against its instrument's model: offsets (frame minus expected; the FWHM as a
    ratio), the flags raised and a sentence for each."""

    zeropoint_offset: float | None
    colour_term_offset: float | None
    depth_offset: float | None
    fwhm_ratio: float | None
    flags: list[str]
    warnings: list[str]

    def to_dict(self) -> dict:
        """The result's `instrument_checks` (the sentences go to its `warnings`)."""
        return {
            "zeropoint_offset": _plain(self.zeropoint_offset),
            "colour_term_offset": _plain(self.colour_term_offset),
            "depth_offset": _plain(self.depth_offset),
            "fwhm_ratio": _plain(self.fwhm_ratio),
            "flags": list(self.flags),
        }


def robust_weighted_mean(
    values: Sequence[float], errors: Sequence[float], clip: float = CHECK_SIGMA
) -> tuple[float, float, float, int] | None:
    """(mean, its error, intrinsic scatter, values kept) of measurements with errors.

    Each value weighs 1 / (error² + τ²), τ being the scatter the errors do not explain
    (DerSimonian-Laird); values beyond `clip` standard deviations of the robust spread are
    dropped and the rest refitted until nothing changes. None without a usable value."""
    x, e = np.asarray(values, float), np.asarray(errors, float)
    ok = np.isfinite(x) & np.isfinite(e) & (e > 0)
    x, e = x[ok], np.maximum(e[ok], 1e-6)  # no value weighs as if exact
    if len(x) == 0:
        return None
    # Start from the median and the robust spread, so that outliers cannot widen the scatter
    # they are judged by; then clip and refit until the kept values no longer change.
    centre, spread = median_and_robust_std(x)
    tau2 = max(0.0, spread**2 - float(np.median(e**2)))
    keep = np.zeros(len(x), bool)
    for _ in range(10):
        new = np.abs(x - centre) <= clip * np.sqrt(e**2 + tau2)
        if not new.any() or np.array_equal(new, keep):
            break
        keep = new
        xs, es = x[keep], e[keep]
        w0 = 1.0 / es**2
        mean0 = float(np.sum(w0 * xs) / np.sum(w0))
        q = float(np.sum(w0 * (xs - mean0) ** 2))
        denominator = float(np.sum(w0) - np.sum(w0**2) / np.sum(w0))
        tau2 = max(0.0, (q - (len(xs) - 1)) / denominator) if denominator > 0 else 0.0
        w = 1.0 / (es**2 + tau2)
        centre = float(np.sum(w * xs) / np.sum(w))
    if not keep.any():
        keep = np.abs(x - centre) <= np.min(np.abs(x - centre))  # the values at the median
    w = 1.0 / (e[keep] ** 2 + tau2)
    centre = float(np.sum(w * x[keep]) / np.sum(w))
    return centre, float(math.sqrt(1.0 / np.sum(w))), float(math.sqrt(tau2)), int(keep.sum())


#: Theil-Sen uses at most this many frames, evenly spaced (the pairs grow as their square).
TREND_SAMPLE = 400


def theil_sen(t: np.ndarray, y: np.ndarray) -> float:
    """Median of the pairwise slopes: a trend that clouds and bad frames do not pull."""
    if len(t) > TREND_SAMPLE:
        pick = np.linspace(0, len(t) - 1, TREND_SAMPLE).astype(np.int64)
        t, y = t[pick], y[pick]
    i, j = np.triu_indices(len(t), k=1)
    dt = t[j] - t[i]
    ok = dt > 0
    return float(np.median((y[j] - y[i])[ok] / dt[ok])) if ok.any() else 0.0


def build_model(frames: Sequence[Frame]) -> InstrumentModel | None:
    """The model of an instrument from its frames (the most recent `MAX_FRAMES`); None when
    no frame has a finite zero point."""
    frames = sorted(
        (f for f in frames if f.zeropoint is not None and math.isfinite(f.zeropoint)),
        key=lambda f: f.mjd,
    )[-MAX_FRAMES:]
    if not frames:
        return None
    t = np.array([f.mjd for f in frames])
    zp = np.array([f.zeropoint for f in frames])
    exptime = np.array([f.exptime if f.exptime and f.exptime > 0 else np.nan for f in frames])
    known = np.isfinite(exptime)
    exptime_ref = float(np.median(exptime[known])) if known.any() else None
    dex = np.where(known, np.log10(exptime / (exptime_ref or 1.0)), 0.0)
    reference_mjd = float(np.median(t))
    scaling = _counts_scale_with_exptime(t, zp, dex, known)
    zp_ref = zp - ZEROPOINT_PER_DEX * dex * scaling
    trend = _trend(t, zp_ref)
    detrended = zp_ref - trend * (t - reference_mjd)
    zp_median, zp_scatter = median_and_robust_std(detrended)

    colour = robust_weighted_mean(
        [f.colour_term if f.colour_term is not None else np.nan for f in frames],
        [f.colour_term_err if f.colour_term_err is not None else np.nan for f in frames],
    )
    depth = np.array([f.depth if f.depth is not None else np.nan for f in frames])
    depth_ref = depth - DEPTH_PER_DEX * dex
    fwhm = np.array([f.fwhm if f.fwhm is not None and f.fwhm > 0 else np.nan for f in frames])
    depth_median, depth_scatter = _finite_median(depth_ref)
    fwhm_median, fwhm_scatter = _finite_median(fwhm)
    return InstrumentModel(
        n_frames=len(frames),
        first_mjd=float(t[0]),
        last_mjd=float(t[-1]),
        reference_mjd=reference_mjd,
        colour_term=colour[0] if colour else None,
        colour_term_err=colour[1] if colour else None,
        colour_term_scatter=colour[2] if colour else None,
        n_colour_frames=colour[3] if colour else 0,
        zeropoint_median=zp_median,
        zeropoint_scatter=zp_scatter,
        zeropoint_trend=trend * 365.25,
        exptime_scaling=bool(scaling),
        exptime_ref=exptime_ref,
        depth_median=depth_median,
        depth_scatter=depth_scatter,
        fwhm_median=fwhm_median,
        fwhm_scatter=fwhm_scatter,
    )


def check_frame(model: InstrumentModel | None, frame: Frame) -> Checks | None:
    """The frame against its instrument's history (None below `MIN_FRAMES` frames).

    A flag needs a departure beyond `CHECK_SIGMA` times the instrument's own scatter (with the
    frame's error) and beyond a floor a young model's small scatter cannot lower."""
    if model is None or model.n_frames < MIN_FRAMES:
        return None
    flags, warnings = [], []
    history = f"over {model.n_frames} frames"

    zp_expected = model.expected_zeropoint(frame.mjd, frame.exptime)
    zp_offset = frame.zeropoint - zp_expected
    sigma = math.hypot(model.zeropoint_scatter, frame.zeropoint_err or 0.0)
    if abs(zp_offset) > max(CHECK_SIGMA * sigma, MIN_ZEROPOINT_OFFSET):
        low = zp_offset < 0
        flags.append("zeropoint_low" if low else "zeropoint_high")
        warnings.append(
            f"zero point {abs(zp_offset):.2f} mag {'below' if low else 'above'} this "
            f"instrument's usual {zp_expected:.2f} (scatter {model.zeropoint_scatter:.3f} "
            f"{history}): "
            + (
                "clouds, dew or a shutter problem?"
                if low
                else "a wrong exposure time, or a different gain or binning?"
            )
        )

    ct_offset = None
    if frame.colour_term is not None and model.colour_term is not None:
        ct_offset = frame.colour_term - model.colour_term
        sigma = math.sqrt(
            (frame.colour_term_err or 0.0) ** 2
            + (model.colour_term_err or 0.0) ** 2
            + (model.colour_term_scatter or 0.0) ** 2
        )
        if abs(ct_offset) > max(CHECK_SIGMA * sigma, MIN_COLOUR_TERM_OFFSET):
            flags.append("colour_term_mismatch")
            warnings.append(
                f"colour term {frame.colour_term:+.3f} differs from this instrument's "
                f"{model.colour_term:+.3f} ± {model.colour_term_err:.3f} ({history}) by "
                f"{ct_offset:+.3f}: was the frame taken through another filter (header or "
                "forceFilter)?"
            )

    depth_offset = None
    depth_expected = model.expected_depth(frame.exptime)
    if frame.depth is not None and depth_expected is not None:
        depth_offset = frame.depth - depth_expected
        limit = max(CHECK_SIGMA * (model.depth_scatter or 0.0), MIN_DEPTH_OFFSET)
        if depth_offset < -limit:
            flags.append("depth_low")
            warnings.append(
                f"the frame reaches {frame.depth:.2f}, {-depth_offset:.2f} mag shallower than "
                f"this instrument's usual {depth_expected:.2f} ({history}): clouds, bright "
                "sky or a short exposure?"
            )

    fwhm_ratio = None
    if frame.fwhm and model.fwhm_median:
        fwhm_ratio = frame.fwhm / model.fwhm_median
        limit = max(1.0 + CHECK_SIGMA * (model.fwhm_scatter or 0.0) / model.fwhm_median,
                    MIN_FWHM_RATIO)  # fmt: skip
        if fwhm_ratio > limit:
            flags.append("seeing_poor")
            warnings.append(
                f"FWHM {frame.fwhm:.2f} arcsec is {fwhm_ratio:.1f} times this instrument's "
                f"usual {model.fwhm_median:.2f} ({history}): poor seeing, focus or tracking"
            )
    return Checks(zp_offset, ct_offset, depth_offset, fwhm_ratio, flags, warnings)


@dataclass(frozen=True)
class BandHistory:
    """What an instrument's history expects of a new frame in one band: the prior a frame with
    too few stars calibrates with (`calib.pipeline`)."""

    colour_term: float | None
    colour_term_err: float | None
    zeropoint: float
    zeropoint_sigma: float


def colour_term_prior(model: InstrumentModel | None) -> tuple[float, float] | None:
    """(colour term, its uncertainty for one frame) to use where a frame has too few stars to
    fit one: the model's mean, with its error and the frame-to-frame scatter."""
    if model is None or model.colour_term is None or model.n_colour_frames < MIN_FRAMES:
        return None
    err = math.hypot(model.colour_term_err or 0.0, model.colour_term_scatter or 0.0)
    return model.colour_term, err


def band_history(
    model: InstrumentModel | None, mjd: float | None, exptime: float | None
) -> BandHistory | None:
    """The prior of a frame taken at `mjd` with `exptime` (None below `MIN_FRAMES` frames)."""
    if model is None or model.n_frames < MIN_FRAMES:
        return None
    prior = colour_term_prior(model)
    return BandHistory(
        colour_term=prior[0] if prior else None,
        colour_term_err=prior[1] if prior else None,
        zeropoint=model.expected_zeropoint(mjd if mjd else model.last_mjd, exptime),
        zeropoint_sigma=model.zeropoint_scatter,
    )


def _dex(exptime: float | None, exptime_ref: float | None) -> float:
    if not exptime or exptime <= 0 or not exptime_ref:
        return 0.0
    return math.log10(exptime / exptime_ref)


def _trend(t: np.ndarray, y: np.ndarray) -> float:
    """Zero-point drift per day, when enough frames span enough time; else 0."""
    if len(t) < TREND_MIN_FRAMES or t[-1] - t[0] < TREND_MIN_DAYS:
        return 0.0
    return theil_sen(t, y)


def _counts_scale_with_exptime(
    t: np.ndarray, zp: np.ndarray, dex: np.ndarray, known: np.ndarray
) -> bool:
    """Whether the catalogue's magnitudes are counts (the zero point rises 2.5 mag per dex of
    exposure time) rather than count rates: whichever leaves the smaller robust scatter, judged
    only when the exposure times differ enough to tell."""
    if known.sum() < MIN_FRAMES or np.ptp(dex[known]) < 0.15:
        return False
    scatter = []
    for scale in (0.0, 1.0):
        y = zp[known] - ZEROPOINT_PER_DEX * dex[known] * scale
        y = y - _trend(t[known], y) * t[known]
        scatter.append(median_and_robust_std(y)[1])
    return scatter[1] < scatter[0]


def _finite_median(x: np.ndarray) -> tuple[float | None, float | None]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return None, None
    return median_and_robust_std(x)


def _plain(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
