"""The surveys matched to a frame and the band fits considered for it, shared by the band
choice (`calib.pipeline`) and the measurement of the alert (`calib.alert`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .catalog import SourceCatalog
from .match import (
    MatchRadius,
    Sky,
)
from .reference import RefCatalog
from .zeropoint import (
    ZeroPointFit,
    colour_for_band,
)

# A correct band needs a small colour term; a colour term this large means the frame was
# matched to another band whose colour relation happens to fit (e.g. an R frame against I).
MAX_PLAUSIBLE_COLOUR_TERM = 0.3


@dataclass
class SurveyMatch:
    """One survey matched to the cleaned catalogue: the reference's positions, radius and
    shift, pairs (at most `MAX_CALIBRATORS`) and their separations (arcsec), which reference
    stars the frame detected
    (``resolved``, from every pair), astrometric scatter (Rayleigh sigma of the pair
    separations, arcsec) and chance coincidences."""

    ref: RefCatalog
    sky: Sky
    match: MatchRadius
    i1: np.ndarray
    i2: np.ndarray
    sep: np.ndarray
    resolved: np.ndarray
    sigma_arcsec: float
    expected_chance: float
    failure: str | None = None


@dataclass
class Candidate:
    """One survey/band zero-point fit considered for the frame (``j1``/``j2``: the stars fitted,
    indices into the cleaned catalogue and the reference)."""

    survey: str
    band: str
    fit: ZeroPointFit
    match: SurveyMatch
    j1: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64), repr=False)
    j2: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64), repr=False)
    colour: np.ndarray | None = field(default=None, repr=False)
    colour_name: str | None = None
    chosen: bool = False

    @property
    def plausible(self) -> bool:
        ct = self.fit.colour_term
        return ct is None or abs(ct) <= MAX_PLAUSIBLE_COLOUR_TERM

    def rank(self) -> tuple[bool, float]:
        """Sort key: plausible colour term first, then lowest zero-point uncertainty, widened
        by ``1 + (k / MAX_PLAUSIBLE_COLOUR_TERM)²``: the band the frame was taken in needs the
        smallest colour term. Bare errors are not comparable: the wrong band clips its own
        stars (V kept 19 of 23 on a faint R frame, k = -0.26) and can quote the smaller one.

        Among implausible bands (none passed), the one whose colour term is fewest of its own
        standard errors beyond the limit: faint calibrators measure it to ±0.15, and the frame's
        band (R, k = +0.36 ± 0.17 for a true 0.07) looked worse than V (-0.42 ± 0.08), which
        the widened error chose, 0.53 mag off."""
        ct = self.fit.colour_term or 0.0
        if not self.plausible:
            beyond = (abs(ct) - MAX_PLAUSIBLE_COLOUR_TERM) / self.colour_term_err
            return (True, beyond if beyond > 0 else math.inf)
        err = self.fit.zeropoint_err or math.inf
        return (False, err * (1.0 + (ct / MAX_PLAUSIBLE_COLOUR_TERM) ** 2))

    @property
    def colour_term_err(self) -> float:
        """Standard error of the colour term (the history's when it comes from there; inf when
        not measured)."""
        if self.fit.colour_term_prior_err is not None:
            return self.fit.colour_term_prior_err
        cov = self.fit.cov
        ok = cov.shape[0] > 1 and np.isfinite(cov[1, 1]) and cov[1, 1] > 0
        return float(np.sqrt(cov[1, 1])) if ok else math.inf

    def to_dict(self) -> dict:
        f = self.fit
        return {
            "survey": self.survey,
            "filter": self.band,
            "zeropoint": _num(f.zeropoint),
            "zeropoint_err": _num(f.zeropoint_err),
            "colour_term": _num(f.colour_term),
            "scatter": _num(f.scatter),
            "npoints": int(f.npoints),
            "outlier_fraction": _num(f.outlier_fraction),
            "ok": bool(f.ok),
            "reason": f.reason,
            "chosen": self.chosen,
        }


def _num(value):
    """Python float for numbers (None for None/NaN/inf); other values unchanged."""
    if value is None or isinstance(value, (str, bool)):
        return value
    value = float(value)
    return value if math.isfinite(value) else None


def matched_residuals(
    chosen: Candidate, cleaned: SourceCatalog
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Instrumental magnitude, residual from the chosen fit (at the frame centre), reference
    error and rows (cleaned catalogue, reference) of every star the survey matched, crowded or
    not."""
    fit, ref = chosen.fit, chosen.match.ref
    band_mag, band_err = ref.bands[chosen.band]
    i1, i2 = chosen.match.i1, chosen.match.i2
    predicted = np.full(len(i1), fit.zeropoint)
    pair = colour_for_band(chosen.band, list(ref.bands))
    if fit.colour_term is not None and pair is not None:
        colour = ref.bands[pair[0]][0][i2] - ref.bands[pair[1]][0][i2]
        predicted += np.where(np.isfinite(colour), fit.colour_term * (fit.colour_pivot - colour), 0)
    residual = band_mag[i2] - cleaned.mag[i1] - predicted
    good = np.isfinite(residual)
    return cleaned.mag[i1][good], residual[good], band_err[i2][good], (i1[good], i2[good])
