"""Calibrate a frame: clean its catalogue, match each survey, fit each band, choose one.

The frame's rules, in the order they apply (docs/calibration.md explains each with its numbers):

1. an alert position that is not a finite RA in [0, 360] and Dec in [-90, 90], or that lies
   off the frame, is an error;
2. each survey is matched at ``matchDist`` or an automatic radius, and the match count is
   compared with the chance coincidences expected from the source density: a match no better
   than chance is remeasured with the automatic offset search, or fails with the reason;
3. calibrators with a neighbour within 2 FWHM (catalogue or reference) are dropped when at
   least 20 isolated ones remain;
4. every band is fitted; the automatic choice prefers the observatory's filters, and below 10
   stars only considers them (``few calibration stars`` warning);
5. without MAGERR, errors come from the calibrators' magnitude-scatter relation;
6. the chosen fit may vary over the frame (order by a Wald test).

The alert is measured on the result, `CalibratedFrame`, by `calib.alert.measure_alert` (or by
forced photometry on an image, `calib.imaging`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .calibration_log import CalibrationLog
from .candidates import MAX_PLAUSIBLE_COLOUR_TERM, Candidate, SurveyMatch, matched_residuals
from .catalog import SourceCatalog
from .clean import clean_catalog
from .crowding import (
    CROWDING_FWHM,
    crowded_sources,
    isolated_calibrators,
    reference_contamination,
    reference_neighbours,
)
from .errors import CalibrationError
from .geometry import FrameGeometry, frame_geometry
from .instrument import BandHistory
from .match import MatchRadius, Sky, apply_shift, auto_crossmatch, crossmatch, near
from .options import parse_force_filter
from .photerr import fit_error_model
from .reference import RefCatalog
from .stats import MAG_PER_FLUX, median
from .target import faintest_detections
from .zeropoint import (
    MIN_STARS,
    ZeroPointFit,
    brightness_systematic,
    clipping_systematic,
    colour_for_band,
    failed_fit,
    fit_spatial_zeropoint,
    fit_zeropoint,
)

FEW_STARS = 10  # below this the band choice is restricted to the observatory's filters


MAX_CALIBRATORS = 3000


@dataclass(frozen=True)
class CalibratedFrame:
    """A frame calibrated against the reference surveys, ready to measure alerts on.

    ``catalog`` is the frame's catalogue as uploaded (errors estimated when it had none),
    ``cleaned`` the rows kept for calibration and ``sky`` their positions; ``shifted`` and
    ``shifted_sky`` are every row moved by the chosen survey's astrometric shift, where alerts
    are looked for. ``chosen`` is the chosen survey and band among ``candidates``, ``fit`` its
    zero point over the frame (spatial terms and systematic errors included).
    ``match_dist_arcsec`` is the observer's ``matchDist`` (``None`` or 0: automatic). ``log``
    and ``warnings`` are the frame's; an alert's measurement adds its own.
    """

    catalog: SourceCatalog
    cleaned: SourceCatalog
    sky: Sky
    shifted: SourceCatalog
    shifted_sky: Sky
    geometry: FrameGeometry
    candidates: tuple[Candidate, ...]
    chosen: Candidate
    fit: ZeroPointFit
    match_dist_arcsec: float | None
    log: CalibrationLog
    warnings: tuple[str, ...]

    @property
    def survey(self) -> str:
        return self.chosen.survey

    @property
    def band(self) -> str:
        return self.chosen.band

    @property
    def fwhm_arcsec(self) -> float:
        return self.geometry.fwhm_arcsec

    @property
    def crowd_radius(self) -> float:
        """Neighbours within this many arcsec (`CROWDING_FWHM` FWHM) add light to a source."""
        return CROWDING_FWHM * self.geometry.fwhm_arcsec

    @property
    def shift_arcsec(self) -> tuple[float, float]:
        """The catalogue's astrometric shift (RA, Dec) found matching the chosen survey."""
        m = self.chosen.match.match
        return m.shift_ra_arcsec, m.shift_dec_arcsec

    @property
    def match_radius_arcsec(self) -> float:
        return self.chosen.match.match.radius_arcsec

    @property
    def astrometric_sigma(self) -> float:
        """Rayleigh sigma (arcsec) of the calibrators' offsets from their reference positions."""
        return self.chosen.match.sigma_arcsec

    @property
    def source_fwhm_arcsec(self) -> np.ndarray | None:
        """Each catalogue row's FWHM in arcsec, when the catalogue gives it."""
        if self.catalog.fwhm_world is not None:
            return self.catalog.fwhm_world * 3600.0
        if self.catalog.fwhm is not None and self.geometry.pixscale:
            return self.catalog.fwhm * self.geometry.pixscale
        return None

    def zeropoint_at(self, ra: float, dec: float) -> tuple[float, float]:
        """The zero point and its error at (ra, dec): the fit may vary over the frame."""
        x, y = self.geometry.normalized(np.array([ra]), np.array([dec]))
        return self.fit.zeropoint_at_position(float(x[0]), float(y[0]))


def check_alert_position(ra: float, dec: float) -> None:
    """`CalibrationError` unless RA is finite in [0, 360] and Dec in [-90, 90] degrees."""
    try:
        ra, dec = float(ra), float(dec)
    except (TypeError, ValueError):
        raise CalibrationError(f"alert position ({ra!r}, {dec!r}) is not numeric") from None
    if not (math.isfinite(ra) and math.isfinite(dec) and 0 <= ra <= 360 and abs(dec) <= 90):
        raise CalibrationError(
            f"alert position RA={ra}, Dec={dec} is invalid: RA must be in [0, 360] and Dec in "
            "[-90, 90] degrees; fix the alert's coordinates"
        )


def calibrate_frame(
    catalog: SourceCatalog,
    refs: Sequence[RefCatalog],
    alert: tuple[float, float],
    *,
    match_dist_arcsec: float | None = None,
    force_filter: str | None = None,
    allowed_filters: Sequence[str] | None = None,
    instrument_history: Mapping[str, BandHistory] | None = None,
    log: CalibrationLog | None = None,
) -> CalibratedFrame:
    """Calibrate ``catalog`` against every reference survey and choose a survey and band.

    Parameters
    ----------
    catalog : SourceCatalog
        The frame's sources, instrumental magnitudes.
    refs : sequence of RefCatalog
        Reference stars covering the frame, one entry per survey.
    alert : (float, float)
        The alert's RA and Dec (ICRS degrees): it must be a valid position on the frame.
    match_dist_arcsec : float, optional
        Crossmatch radius; ``None`` or 0 chooses it per survey from the astrometric offsets,
        correcting a systematic shift of the catalogue first.
    force_filter : str, optional
        ``forceFilter`` as uploaded (see `parse_force_filter`); honoured exactly.
    allowed_filters : sequence of str, optional
        The observatory's filters: the automatic choice stays among them when one passes,
        and only considers them with fewer than `FEW_STARS` calibration stars.
    instrument_history : mapping of band to BandHistory, optional
        What the observatory's own frames expect in each band (`calib.instrument`). A band
        with too few stars to fit a colour term takes the history's, and with fewer than
        `FEW_STARS` stars a band whose zero point agrees with its history is preferred.
    log : CalibrationLog, optional
        A log already begun (the image path's extraction); a new one by default.

    Raises
    ------
    CalibrationError
        Invalid or off-frame alert position, no survey/band passes the quality gates, a match
        no better than chance, the forced band is unavailable or fails, or ``force_filter`` is
        malformed. Nothing else is raised for what the observer sent.
    """
    target_ra, target_dec = alert
    check_alert_position(target_ra, target_dec)
    forced = parse_force_filter(force_filter)
    history = instrument_history or {}
    log = CalibrationLog() if log is None else log
    log.add(
        "catalogue", f"catalogue: {len(catalog)} sources ({catalog.format}; {_describe(catalog)})"
    )
    warnings: list[str] = []
    if match_dist_arcsec is not None and not (
        math.isfinite(match_dist_arcsec) and match_dist_arcsec >= 0
    ):
        raise CalibrationError(
            f"matchDist must be a non-negative number of arcsec, not {match_dist_arcsec}"
        )
    cleaned, rejected = clean_catalog(catalog)
    dropped = ", ".join(f"{k} {v}" for k, v in rejected.items() if v) or "none"
    log.add(
        "cleaning",
        f"cleaning: kept {len(cleaned)} of {len(catalog)} sources (rejected: {dropped})",
    )
    if len(cleaned) == 0:
        raise CalibrationError(
            f"no usable sources in the catalogue after cleaning "
            f"({len(catalog)} rejected: {dropped})"
        )
    if not refs:
        raise CalibrationError("no reference catalogue covers the field")
    geometry = frame_geometry(cleaned)
    log.add("frame", _describe_geometry(geometry))
    _require_target_on_frame(geometry, catalog, target_ra, target_dec)
    crowd_radius = CROWDING_FWHM * geometry.fwhm_arcsec
    sky = Sky.at(cleaned.ra, cleaned.dec)

    candidates = []
    for ref in refs:
        survey = _match_survey(cleaned, sky, ref, match_dist_arcsec, geometry, log, warnings)
        candidates.extend(_fit_survey(cleaned, sky, survey, crowd_radius, log, history))
    chosen = _choose(candidates, forced, allowed_filters, len(cleaned), log, warnings, history)
    chosen.chosen = True
    fit = chosen.fit
    log.add(
        "choice",
        f"chosen {chosen.survey}/{chosen.band}: zero point {fit.zeropoint:.3f} ± "
        f"{fit.zeropoint_err:.3f} from {fit.npoints} stars",
    )
    if not catalog.has_errors:
        cleaned, catalog = _estimate_errors(chosen, cleaned, catalog, log)
    fit = _spatial_fit(chosen, cleaned, geometry, log)
    match = chosen.match.match
    raw_ra, raw_dec = apply_shift(
        catalog.ra, catalog.dec, match.shift_ra_arcsec, match.shift_dec_arcsec
    )
    return CalibratedFrame(
        catalog=catalog,
        cleaned=cleaned,
        sky=sky,
        shifted=replace(catalog, ra=raw_ra, dec=raw_dec),  # shares the other columns
        shifted_sky=Sky.at(raw_ra, raw_dec),
        geometry=geometry,
        candidates=tuple(candidates),
        chosen=chosen,
        fit=fit,
        match_dist_arcsec=match_dist_arcsec,
        log=log,
        warnings=tuple(warnings),
    )


def _spatial_fit(
    chosen: Candidate, cleaned: SourceCatalog, geometry: FrameGeometry, log: CalibrationLog
) -> ZeroPointFit:
    """The chosen band's zero point over the frame, with the systematic errors its
    calibrators show (bright against faint, clipped against kept)."""
    ref_err = chosen.match.ref.bands[chosen.band][1][chosen.j2]
    position = geometry.normalized(cleaned.ra[chosen.j1], cleaned.dec[chosen.j1])
    fit = fit_spatial_zeropoint(
        chosen.fit, cleaned.mag_err[chosen.j1], ref_err, position, colour_name=chosen.colour_name
    )
    for systematic, why in (
        (brightness_systematic(fit), "the brighter and fainter calibrators disagree"),
        (clipping_systematic(fit), "the zero point depends on the stars clipped"),
    ):
        if systematic > 1e-4:
            fit.add_systematic(systematic)
            log.add(
                "zeropoint",
                f"zero point error widened by {systematic:.3f} mag in quadrature: {why}",
            )
    if fit.rival is not None:
        log.add(
            "zeropoint",
            f"an order {fit.rival.order} zero point fits better but has too few effective stars "
            "to be used; the error includes how far it lies from the one used",
        )
    return fit


def _describe(catalog: SourceCatalog) -> str:
    return ", ".join(f"{role}={name}" for role, name in catalog.columns.items())


def _require_target_on_frame(
    g: FrameGeometry, catalog: SourceCatalog, ra: float, dec: float
) -> None:
    """`CalibrationError` when the alert lies off the frame: an upper limit there would be a
    wrong point on its light curve (a wrong EventID, or a frame of another field).

    Detected sources rarely reach the frame's very edge, so the box that holds the cleaned
    sources is widened by a tenth of its size and two FWHM before the alert counts as
    outside, and an alert with any catalogue source within two FWHM (flagged ones included:
    cleaning drops the edge-flagged rows, so a target on the very edge lay outside the box of
    the others on 23 of 100 small frames) is on the frame.
    """
    margin = 0.1 * max(g.half_x, g.half_y) + 2.0 * g.fwhm_arcsec
    in_box = g.inside(np.array([ra]), np.array([dec]), margin_arcsec=-margin)[0]
    if not in_box and not len(_raw_sources_near(catalog, ra, dec, 2.0 * g.fwhm_arcsec)):
        centre, alert = Sky.at(np.array([g.ra0, ra]), np.array([g.dec0, dec])).xyz.T
        distance = math.degrees(math.acos(float(np.clip(centre @ alert, -1.0, 1.0))))
        raise CalibrationError(
            f"the alert ({ra:.5f}, {dec:+.5f}) is {distance * 60:.1f} arcmin from the frame's "
            f"centre, outside the frame ({2 * g.half_x / 60:.1f} x {2 * g.half_y / 60:.1f} "
            "arcmin): check EventID, or the frame's WCS"
        )


def _raw_sources_near(catalog: SourceCatalog, ra: float, dec: float, radius: float):
    """Catalogue rows with a valid position within ``radius`` arcsec of (ra, dec)."""
    with np.errstate(invalid="ignore"):
        ok = np.flatnonzero(np.isfinite(catalog.ra) & np.isfinite(catalog.dec))
    return ok[near(Sky.at(catalog.ra[ok], catalog.dec[ok]), ra, dec, radius)[0]]


def _describe_geometry(g: FrameGeometry) -> str:
    scale = f", pixel scale {g.pixscale:.2f} arcsec" if g.pixscale else ""
    how = "measured" if g.fwhm_measured else "assumed: no FWHM column"
    return (
        f"frame: {2 * g.half_x / 60:.1f} x {2 * g.half_y / 60:.1f} arcmin around "
        f"({g.ra0:.5f}, {g.dec0:+.5f}){scale}, FWHM {g.fwhm_arcsec:.2f} arcsec ({how})"
    )


def _chance_matches(n_sources: int, ref: RefCatalog, geometry: FrameGeometry, radius: float):
    """Matches expected by chance: sources x reference density x match area."""
    density = np.count_nonzero(geometry.inside(ref.ra, ref.dec)) / geometry.area_arcsec2
    return n_sources * density * math.pi * radius**2


def _significant(n_matched: int, expected: float) -> bool:
    """More matches than chance could plausibly give (twice the expectation plus 3 sigma)."""
    return n_matched >= 2.0 * expected + 3.0 * math.sqrt(expected)


def _match_survey(
    cleaned: SourceCatalog,
    sky: Sky,
    ref: RefCatalog,
    match_dist: float | None,
    geometry: FrameGeometry,
    log: CalibrationLog,
    warnings: list[str],
) -> SurveyMatch:
    """Match one survey (``sky``: the cleaned catalogue's positions); a match no better than
    chance is remeasured or fails with a reason."""
    n = len(cleaned)
    ref_sky = Sky.at(ref.ra, ref.dec)
    if match_dist:
        match = MatchRadius(float(match_dist), 0.0, 0.0, 0)
        i1, i2, sep = crossmatch(sky, ref_sky, match.radius_arcsec)
        expected = _chance_matches(n, ref, geometry, match.radius_arcsec)
        how = "given"
        # Too few to calibrate counts as failed too: 1 match among 3000 sources of a sparse
        # Gaia frame beats the 0.05 expected by chance, yet the frame was 5 arcsec off.
        too_few = len(i1) < MIN_STARS
        if too_few or not _significant(len(i1), expected):
            auto, a1, a2, asep = auto_crossmatch(sky, ref_sky)
            auto_expected = _chance_matches(n, ref, geometry, auto.radius_arcsec)
            if _significant(len(a1), auto_expected) and len(a1) > max(len(i1), MIN_STARS - 1):
                why = (
                    f"too few to calibrate (need {MIN_STARS})"
                    if too_few and _significant(len(i1), expected)
                    else f"no more than the {expected:.1f} expected by chance"
                )
                warnings.append(
                    f"{ref.survey}: matchDist={match_dist:g} arcsec gave {len(i1)} matches, "
                    f"{why}; the catalogue is offset "
                    f"by {auto.shift_ra_arcsec:+.1f}, {auto.shift_dec_arcsec:+.1f} arcsec "
                    f"(RA, Dec): corrected and rematched ({len(a1)} matches within "
                    f"{auto.radius_arcsec:.1f} arcsec)"
                )
                how = "given matchDist failed; automatic offset search"
                match, i1, i2, sep, expected = auto, a1, a2, asep, auto_expected
    else:
        match, i1, i2, sep = auto_crossmatch(sky, ref_sky)
        expected = _chance_matches(n, ref, geometry, match.radius_arcsec)
        how = (
            f"automatic; catalogue shifted by {match.shift_ra_arcsec:+.2f}, "
            f"{match.shift_dec_arcsec:+.2f} arcsec"
        )
    log.add(
        "match",
        f"{ref.survey}: {len(ref)} reference stars, {len(i1)} matched within "
        f"{match.radius_arcsec:.2f} arcsec ({how}; {expected:.1f} expected by chance)",
    )
    failure = None
    if len(i1) and not _significant(len(i1), expected):
        failure = (
            f"{len(i1)} matches within {match.radius_arcsec:.1f} arcsec are no more than the "
            f"{expected:.1f} expected by chance, even after searching for an offset up to 10 "
            "arcsec: check the frame's astrometry (WCS) or matchDist"
        )
        log.add("match", f"{ref.survey}: {failure}")
    sigma = median(sep) / 1.1774 if len(sep) else 0.0
    resolved = np.zeros(len(ref), dtype=bool)
    resolved[i2] = True
    if len(i1) > MAX_CALIBRATORS:
        # An evenly spaced subset: the zero point of 3000 stars is already limited by
        # systematics, and every later step (crowding, fits, error model) scales with it.
        keep = np.linspace(0, len(i1) - 1, MAX_CALIBRATORS).astype(np.int64)
        log.add("match", f"{ref.survey}: {MAX_CALIBRATORS} of the {len(i1)} matched stars used")
        i1, i2, sep = i1[keep], i2[keep], sep[keep]
    return SurveyMatch(
        ref, ref_sky, match, i1, i2, sep, resolved, float(sigma), float(expected), failure
    )


def _fit_survey(
    cleaned: SourceCatalog,
    sky: Sky,
    survey: SurveyMatch,
    crowd_radius: float,
    log: CalibrationLog,
    history: Mapping[str, BandHistory],
) -> list[Candidate]:
    """Fit each band of one survey on its isolated calibrators (see `crowding`); a band with
    too few stars for a colour term takes its history's (``history``)."""
    ref, i1, i2 = survey.ref, survey.i1, survey.i2
    bands = list(ref.bands)
    candidates = []
    neighbours = reference_neighbours(survey.sky, i2, crowd_radius)
    crowded = crowded_sources(sky, cleaned.flags, i1, crowd_radius)
    for band, (mag, err) in ref.bands.items():
        if survey.failure:
            fit = failed_fit(survey.failure, len(i1))
            candidates.append(Candidate(ref.survey, band, fit, survey))
            continue
        with np.errstate(invalid="ignore"):
            good = np.isfinite(mag[i2]) & (np.abs(mag[i2]) < 50)
        j1, j2 = i1[good], i2[good]
        contamination = reference_contamination(neighbours, i2, mag)[good]
        isolated = isolated_calibrators(crowded[good], contamination)
        if isolated is not None and not isolated[0].all():
            keep, allowed = isolated
            log.add(
                "fit",
                f"{ref.survey}/{band}: {len(j1) - keep.sum()} of {len(j1)} calibrators dropped "
                f"for neighbours within {crowd_radius:.1f} arcsec (adding over {allowed:.0%} "
                "to their flux)",
            )
            j1, j2, contamination = j1[keep], j2[keep], contamination[keep]
        colour_bands = colour_for_band(band, bands)
        colour = colour_name = None
        if colour_bands is not None:
            blue, red = (ref.bands[b][0][j2] for b in colour_bands)
            colour, colour_name = blue - red, "-".join(colour_bands)
        known = history.get(band)
        prior = None
        if known is not None and known.colour_term is not None:
            prior = (known.colour_term, known.colour_term_err)
        fit = fit_zeropoint(
            cleaned.mag[j1], cleaned.mag_err[j1], mag[j2], err[j2],
            colour=colour, colour_name=colour_name, colour_prior=prior,
        )  # fmt: skip
        if fit.colour_term_prior_err is not None:
            log.add(
                "fit",
                f"{ref.survey}/{band}: too few stars for a colour term; the instrument's "
                f"history gives {fit.colour_term:+.3f} ± {fit.colour_term_prior_err:.3f}",
            )
        systematic = MAG_PER_FLUX * median(contamination) if len(contamination) else 0.0
        if fit.zeropoint_err is not None:
            # Unseen neighbours brighten the calibrators: their typical contamination is a
            # systematic error the statistical one does not include (carried into refits).
            fit.add_systematic(systematic)
        if fit.npoints == 0 and len(j1) == 0:
            fit.reason = (
                f"no reference stars matched within {survey.match.radius_arcsec:.1f} arcsec "
                f"(0 of {len(cleaned)} sources); check the astrometry or matchDist"
            )
        candidates.append(Candidate(ref.survey, band, fit, survey, j1, j2, colour, colour_name))
        log.add("fit", _describe_fit(ref.survey, band, fit))
    return candidates


def _describe_fit(survey: str, band: str, fit: ZeroPointFit) -> str:
    if fit.zeropoint is None:
        return f"{survey}/{band}: rejected, {fit.reason}"
    colour = f", colour term {fit.colour_term:+.3f} ({fit.colour})" if fit.colour else ""
    text = (
        f"{survey}/{band}: zero point {fit.zeropoint:.3f} ± {fit.zeropoint_err:.3f}{colour}, "
        f"scatter {fit.scatter:.3f}, {fit.npoints} stars, {fit.outlier_fraction:.0%} outliers"
    )
    return text if fit.ok else f"{text}; rejected, {fit.reason}"


def _choose(
    candidates: list[Candidate],
    forced: tuple[str | None, str | None] | None,
    allowed_filters: Sequence[str] | None,
    n_sources: int,
    log: CalibrationLog,
    warnings: list[str],
    history: Mapping[str, BandHistory],
) -> Candidate:
    """Apply the forced filter or the observatory's filters, then take the best passing fit
    (below `FEW_STARS`, one whose zero point its band's history expects first)."""
    pool = candidates
    if forced is not None:
        survey, band = forced
        pool = [
            c
            for c in candidates
            if (survey is None or c.survey.lower() == survey.lower())
            and (band is None or c.band == band)
        ]
        wanted = f"{survey or 'any'}/{band or 'any'}"
        if not pool:
            available = ", ".join(f"{c.survey}/{c.band}" for c in candidates) or "none"
            raise CalibrationError(f"forced filter {wanted} not available; available: {available}")
        log.add("choice", f"forced filter {wanted}: {len(pool)} candidate(s)")
    passing = [c for c in pool if c.fit.ok]
    if not passing:
        raise CalibrationError(_failure_message(pool, n_sources))
    # Bands share the matched stars and differ only by clipping: any below counts as few.
    few = min(c.fit.npoints for c in passing) < FEW_STARS
    if forced is None and allowed_filters:
        allowed = [c for c in passing if c.band in set(allowed_filters)]
        if allowed:
            passing = allowed
        elif few:
            raise CalibrationError(
                f"only {min(c.fit.npoints for c in passing)} calibration stars and none of the "
                f"observatory's filters ({', '.join(allowed_filters)}) calibrates: with so few "
                "stars the band cannot be told from the data; set forceFilter"
            )
        else:
            log.add(
                "choice",
                f"none of the observatory's filters ({', '.join(allowed_filters)}) calibrates; "
                "choosing among all bands",
            )
    best = min(passing, key=Candidate.rank)
    if few and forced is None:
        # Below 10 stars there is no colour term, so a wrong band shows instead as the colour
        # spread in the residuals of all matched stars (none clipped). A band that did fit one
        # must still be plausible: a colour term absorbs the spread (I with k = +1.08 on 10
        # stars of an R frame matched R's residuals, 0.3-0.45 mag off quoting 0.01).
        distance = {id(c): _history_distance(c, history.get(c.band)) for c in passing}
        expected = [c for c in passing if distance[id(c)] <= HISTORY_SIGMA]
        if expected:
            log.add(
                "choice",
                "few stars: the zero point of "
                + ", ".join(f"{c.survey}/{c.band} ({distance[id(c)]:.1f} sigma)" for c in expected)
                + " agrees with the instrument's history; the closest is preferred",
            )
        # The bands the history expects first, the closest of them; else the residuals decide.
        best = min(
            passing,
            key=lambda c: (
                not c.plausible,
                c not in expected,
                distance[id(c)] if c in expected else float(np.sqrt(np.mean(c.fit.residual**2))),
            ),
        )
    if not best.plausible and forced is None:
        warnings.append(
            f"no band has a plausible colour term (|k| <= {MAX_PLAUSIBLE_COLOUR_TERM}): "
            f"{best.survey}/{best.band} (k = {best.fit.colour_term:+.2f} ± "
            f"{best.colour_term_err:.2f}) is the nearest, but the band is uncertain; set "
            "forceFilter"
        )
    if few:
        if forced is not None:
            how = "the forced filter"
        elif allowed_filters:
            how = f"the observatory's filters ({', '.join(allowed_filters)})"
        else:
            how = "all bands (the observatory lists no filters, so the band is uncertain)"
        warnings.append(
            f"few calibration stars ({best.fit.npoints}): the zero point is uncertain and the "
            f"band was chosen among {how}"
        )
    return best


#: A few-star zero point agrees with its band's history within this many of the history's
#: standard deviations (its scatter and the frame's error, at least HISTORY_FLOOR / 3).
HISTORY_SIGMA = 3.0
HISTORY_FLOOR = 0.1  # mag


def _history_distance(c: Candidate, known: BandHistory | None) -> float:
    """How far the candidate's zero point lies from what its band's history expects, in standard
    deviations (inf without history). A frame through another filter has another zero point;
    clouds lower every band's, and then none agrees and the residuals choose."""
    if known is None or c.fit.zeropoint is None:
        return math.inf
    sigma = math.hypot(known.zeropoint_sigma, c.fit.zeropoint_err or 0.0)
    sigma = max(sigma, HISTORY_FLOOR / HISTORY_SIGMA)
    return abs(c.fit.zeropoint - known.zeropoint) / sigma


def _failure_message(pool: list[Candidate], n_sources: int) -> str:
    failures = {c.match.failure for c in pool if c.match.failure}
    if failures and all(c.match.failure for c in pool):
        return "; ".join(sorted(failures))
    if all(c.fit.npoints == 0 and c.fit.zeropoint is None for c in pool):
        radius = max(c.match.match.radius_arcsec for c in pool)
        return (
            f"no reference stars matched within {radius:.1f} arcsec (0 of {n_sources} sources); "
            "check the astrometry or matchDist"
        )
    reasons = "; ".join(f"{c.survey}/{c.band}: {c.fit.reason}" for c in pool)
    return f"no survey/filter passed the quality checks ({reasons})"


def _estimate_errors(
    chosen: Candidate, cleaned: SourceCatalog, catalog: SourceCatalog, log: CalibrationLog
) -> tuple[SourceCatalog, SourceCatalog]:
    """Errors from the calibrators' magnitude-scatter relation; the chosen band is refitted."""
    band_mag, band_err = chosen.match.ref.bands[chosen.band]
    # Every matched star, not only the isolated ones kept for the fit: they reach fainter.
    inst, residual, ref_err, _ = matched_residuals(chosen, cleaned)
    model = fit_error_model(inst, residual, ref_err, faintest_detections(cleaned.mag))
    if model is None:
        log.add("errors", "no MAGERR column and too few calibrators to estimate errors from")
        return cleaned, catalog
    log.add(
        "errors",
        f"no MAGERR column: photometric errors estimated from the scatter of the "
        f"{len(inst)} matched stars against magnitude ({model.describe()})",
    )
    cleaned = replace(cleaned, mag_err=model(cleaned.mag))
    catalog = replace(catalog, mag_err=model(catalog.mag))
    systematic = chosen.fit.systematic
    prior = chosen.fit.colour_term_prior_err
    chosen.fit = fit_zeropoint(
        cleaned.mag[chosen.j1], cleaned.mag_err[chosen.j1], band_mag[chosen.j2],
        band_err[chosen.j2], colour=chosen.colour, colour_name=chosen.colour_name,
        colour_prior=None if prior is None else (chosen.fit.colour_term, prior),
    )  # fmt: skip
    chosen.fit.add_systematic(systematic)
    return cleaned, catalog
