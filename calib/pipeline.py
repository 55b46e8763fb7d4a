"""Calibrate a frame end to end: clean, match each survey, fit each band, choose, measure.

The rules, in the order they apply (docs/calibration.md explains each with its numbers):

1. an alert position that is not a finite RA in [0, 360] and Dec in [-90, 90] is an error;
2. each survey is matched at ``matchDist`` or an automatic radius, and the match count is
   compared with the chance coincidences expected from the source density: a match no better
   than chance is remeasured with the automatic offset search, or fails with the reason;
3. calibrators with a neighbour within 2 FWHM (catalogue or reference) are dropped when at
   least 20 isolated ones remain;
4. every band is fitted; the automatic choice prefers the observatory's filters, and below 10
   stars only considers them (``few calibration stars`` warning);
5. without MAGERR, errors come from the calibrators' magnitude-scatter relation;
6. the chosen fit may vary over the frame (order by a Wald test), evaluated at the target;
7. the target has its own search radius and flags; a saturated target gets an honest error;
8. the limiting magnitude is the 50 % completeness of the reference stars when measurable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from . import schema
from .alert import (
    EMPIRICAL_NEIGHBOURS,
    alert_in_blend,
    empirical_error,
    flag_reference_neighbours,
    limit_beside_sources,
    measured_limit,
    own_counterpart,
    saturation_evidence,
    separation_limit,
    shared_light_error,
    unresolved_stars_near,
    widen_for_displacement,
)
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
from .match import (
    MatchRadius,
    Sky,
    apply_shift,
    auto_crossmatch,
    crossmatch,
    near,
)
from .options import parse_force_filter
from .photerr import fit_error_model
from .reference import RefCatalog
from .stats import MAG_PER_FLUX, median
from .target import (
    faintest_detections,
    measure_target,
    position_scatter,
    target_radius,
)
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


@dataclass
class CalibrationResult:
    """Calibrated measurement of the alert on one frame (`calib.schema` describes its JSON).

    ``zeropoint`` and ``zeropoint_err`` are evaluated at the target (``zeropoint_order`` is the
    order of the polynomial over the frame, 0 for a constant). ``target_flags`` lists which of
    ``saturated``, ``blended``, ``edge``, ``offset`` apply; ``warnings`` are sentences a user
    should read, ``target_notes`` those of them about the catalogue's measurement of the target
    (an image measures the target again, and replaces them). ``fit`` is the chosen zero-point
    fit, with the per-star arrays of the plot; ``astrometric_sigma`` (arcsec) the Rayleigh
    sigma of the calibrators' offsets from their reference positions.
    """

    survey: str
    filter: str
    mag: float
    mag_err: float
    limit: bool
    limiting_mag: float | None
    zeropoint: float
    zeropoint_err: float
    colour_term: float | None
    scatter: float
    npoints: int
    outlier_fraction: float
    match_dist: float
    ra: float
    dec: float
    zeropoint_order: int = 0
    colour_term_err: float | None = None
    fwhm: float | None = None
    astrometric_sigma: float = 0.0
    candidates: list[dict] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    target_flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    target_notes: list[str] = field(default_factory=list)
    fit: ZeroPointFit | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-safe dict of `calib.schema.RESULT_FIELDS`: python scalars, ``None`` for NaN."""
        keys = [k for k in schema.RESULT_KEYS if hasattr(self, k)]
        return schema.result_dict({k: getattr(self, k) for k in keys})


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


def calibrate(
    catalog: SourceCatalog,
    refs: Sequence[RefCatalog],
    target_ra: float,
    target_dec: float,
    *,
    match_dist_arcsec: float | None = None,
    force_filter: str | None = None,
    allowed_filters: Sequence[str] | None = None,
    instrument_history: Mapping[str, BandHistory] | None = None,
) -> CalibrationResult:
    """Calibrate ``catalog`` against every reference survey and measure the alert.

    Parameters
    ----------
    catalog : SourceCatalog
        The frame's sources, instrumental magnitudes.
    refs : sequence of RefCatalog
        Reference stars covering the frame, one entry per survey.
    target_ra, target_dec : float
        Alert position, ICRS degrees.
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

    Raises
    ------
    CalibrationError
        Invalid alert position, no survey/band passes the quality gates, a match no better
        than chance, the forced band is unavailable or fails, or ``force_filter`` is
        malformed. Nothing else is raised for what the observer sent.
    """
    check_alert_position(target_ra, target_dec)
    forced = parse_force_filter(force_filter)
    log = [f"catalogue: {len(catalog)} sources ({catalog.format}; {_describe(catalog)})"]
    warnings: list[str] = []
    if match_dist_arcsec is not None and not (
        math.isfinite(match_dist_arcsec) and match_dist_arcsec >= 0
    ):
        raise CalibrationError(
            f"matchDist must be a non-negative number of arcsec, not {match_dist_arcsec}"
        )
    cleaned, rejected = clean_catalog(catalog)
    dropped = ", ".join(f"{k} {v}" for k, v in rejected.items() if v) or "none"
    log.append(f"cleaning: kept {len(cleaned)} of {len(catalog)} sources (rejected: {dropped})")
    if len(cleaned) == 0:
        raise CalibrationError(
            f"no usable sources in the catalogue after cleaning "
            f"({len(catalog)} rejected: {dropped})"
        )
    if not refs:
        raise CalibrationError("no reference catalogue covers the field")
    geometry = frame_geometry(cleaned)
    log.append(_describe_geometry(geometry))
    _require_target_on_frame(geometry, catalog, target_ra, target_dec)
    crowd_radius = CROWDING_FWHM * geometry.fwhm_arcsec
    sky = Sky.at(cleaned.ra, cleaned.dec)

    candidates = []
    for ref in refs:
        survey = _match_survey(cleaned, sky, ref, match_dist_arcsec, geometry, log, warnings)
        candidates.extend(
            _fit_survey(cleaned, sky, survey, crowd_radius, log, instrument_history or {})
        )
    chosen = _choose(
        candidates, forced, allowed_filters, len(cleaned), log, warnings, instrument_history or {}
    )
    chosen.chosen = True
    fit = chosen.fit
    log.append(
        f"chosen {chosen.survey}/{chosen.band}: zero point {fit.zeropoint:.3f} ± "
        f"{fit.zeropoint_err:.3f} from {fit.npoints} stars"
    )

    if not catalog.has_errors:
        cleaned, catalog = _estimate_errors(chosen, cleaned, catalog, log)
        fit = chosen.fit
    ref = chosen.match.ref
    ref_err = ref.bands[chosen.band][1][chosen.j2]
    position = geometry.normalized(cleaned.ra[chosen.j1], cleaned.dec[chosen.j1])
    fit = fit_spatial_zeropoint(
        fit, cleaned.mag_err[chosen.j1], ref_err, position, colour_name=chosen.colour_name
    )
    for systematic, why in (
        (brightness_systematic(fit), "the brighter and fainter calibrators disagree"),
        (clipping_systematic(fit), "the zero point depends on the stars clipped"),
    ):
        if systematic > 1e-4:
            fit.add_systematic(systematic)
            log.append(f"zero point error widened by {systematic:.3f} mag in quadrature: {why}")
    tx, ty = geometry.normalized(np.array([target_ra]), np.array([target_dec]))
    zp_target, zp_target_err = fit.zeropoint_at_position(float(tx[0]), float(ty[0]))
    if fit.rival is not None:
        log.append(
            f"an order {fit.rival.order} zero point fits better but has too few effective stars "
            "to be used; the error includes how far it lies from the one used"
        )
    if fit.order:
        log.append(
            f"zero point varies over the frame (order {fit.order} polynomial, chosen by the "
            "Wald test): "
            f"{zp_target:.3f} ± {zp_target_err:.3f} at the target, {fit.zeropoint:.3f} at the "
            "centre"
        )

    match = chosen.match.match
    raw_ra, raw_dec = apply_shift(
        catalog.ra, catalog.dec, match.shift_ra_arcsec, match.shift_dec_arcsec
    )
    shifted = replace(catalog, ra=raw_ra, dec=raw_dec)  # shares the other columns
    shifted_sky = Sky.at(raw_ra, raw_dec)
    radius = (
        float(match_dist_arcsec)
        if match_dist_arcsec
        else target_radius(match.radius_arcsec, chosen.match.sigma_arcsec, geometry.fwhm_arcsec)
    )
    source_fwhm = _source_fwhm_arcsec(catalog, geometry)
    limiting_mag = measured_limit(
        chosen, shifted, shifted_sky, cleaned, geometry, zp_target, radius, log
    )
    target = measure_target(
        shifted,
        shifted_sky,
        target_ra,
        target_dec,
        radius_arcsec=radius,
        astrometric_sigma_arcsec=chosen.match.sigma_arcsec,
        fwhm_arcsec=geometry.fwhm_arcsec,
        zeropoint=zp_target,
        zeropoint_err=zp_target_err,
        limiting_mag=limiting_mag,
        saturation=saturation_evidence(
            shifted,
            shifted_sky,
            cleaned,
            chosen,
            fit,
            zp_target,
            radius,
            source_fwhm,
            geometry.fwhm_arcsec if geometry.fwhm_measured else None,
        ),
        source_fwhm_arcsec=source_fwhm,
        scatter=position_scatter(cleaned.mag[chosen.match.i1], chosen.match.sep),
    )
    if target.limit:
        log.append(
            f"target: no source within {radius:.2f} arcsec of the alert; "
            f"upper limit {target.mag:.2f}"
        )
    else:
        flagged = f", FLAGS {target.flags}" if target.flags else ""
        marks = f" [{', '.join(target.target_flags)}]" if target.target_flags else ""
        log.append(
            f"target: source at {target.separation_arcsec:.2f} arcsec (search radius "
            f"{radius:.2f}){flagged}; {chosen.band} = {target.mag:.3f} ± {target.mag_err:.3f}"
            f"{marks}"
        )
    counterpart = own_counterpart(target, chosen, (target_ra, target_dec), geometry.fwhm_arcsec)
    separable = None
    if target.limit:
        separable = separation_limit(
            shifted, shifted_sky, cleaned, sky, chosen.match.i1, (target_ra, target_dec),
            zp_target, geometry.fwhm_arcsec,
        )  # fmt: skip
        confused = unresolved_stars_near(
            chosen, (target_ra, target_dec), geometry.fwhm_arcsec, target.mag
        )
        if confused is not None:
            separable = confused if separable is None else min(separable, confused)
    blend = alert_in_blend(
        target, shifted, shifted_sky, cleaned, sky, chosen, fit, (zp_target, zp_target_err),
        (target_ra, target_dec), radius, geometry.fwhm_arcsec, counterpart, separable, log,
    )  # fmt: skip
    if blend is not None:
        target = blend
    elif target.limit:  # no catalogued star's light to bound it: what the frame separates
        target = limit_beside_sources(target, separable, log)
    elif not target.limit:
        phot_err = math.sqrt(max(target.mag_err**2 - zp_target_err**2, 0.0))
        if "offset" in target.target_flags and geometry.fwhm_measured:
            widen_for_displacement(target, geometry.fwhm_arcsec, log)
        flag_reference_neighbours(target, chosen, crowd_radius, counterpart)
        if "saturated" not in target.target_flags:
            crowded = "blended" in target.target_flags or (
                len(near(shifted_sky, target.ra, target.dec, crowd_radius)[0]) > 1
            )
            empirical = empirical_error(
                chosen, cleaned, sky, target.mag - zp_target, crowd_radius, crowded, phot_err
            )
            why = (
                f"the scatter of the {EMPIRICAL_NEIGHBOURS} matched stars nearest its magnitude "
                f"({'crowded' if crowded else 'isolated'} like it when enough; beyond 1 mag the "
                "ratio of their scatter to their quoted errors)"
            )
            shared = shared_light_error(
                target, shifted, shifted_sky, cleaned, sky, chosen, geometry.fwhm_arcsec
            )
            if shared is not None and (empirical is None or shared > empirical):
                empirical = shared
                why = "the light its detected neighbours share with it (deblending, apertures)"
            if empirical is not None and empirical > target.mag_err:
                log.append(
                    f"target error raised from {target.mag_err:.3f} to {empirical:.3f} mag: " + why
                )
                target.mag_err = float(np.hypot(empirical, zp_target_err))
    warnings.extend(target.notes)
    return CalibrationResult(
        survey=chosen.survey,
        filter=chosen.band,
        mag=target.mag,
        mag_err=target.mag_err,
        limit=target.limit,
        limiting_mag=target.limiting_mag,
        zeropoint=zp_target,
        zeropoint_err=zp_target_err,
        colour_term=fit.colour_term,
        colour_term_err=chosen.colour_term_err if fit.colour_term is not None else None,
        fwhm=geometry.fwhm_arcsec if geometry.fwhm_measured else None,
        scatter=fit.scatter,
        npoints=fit.npoints,
        outlier_fraction=fit.outlier_fraction,
        match_dist=match.radius_arcsec,
        ra=target.ra,
        dec=target.dec,
        zeropoint_order=fit.order,
        astrometric_sigma=chosen.match.sigma_arcsec,
        candidates=[c.to_dict() for c in candidates],
        log=log,
        target_flags=target.target_flags,
        warnings=warnings,
        target_notes=list(target.notes),
        fit=fit,
    )


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


def _source_fwhm_arcsec(catalog: SourceCatalog, g: FrameGeometry) -> np.ndarray | None:
    """Each source's FWHM in arcsec, when the catalogue gives it."""
    if catalog.fwhm_world is not None:
        return catalog.fwhm_world * 3600.0
    if catalog.fwhm is not None and g.pixscale:
        return catalog.fwhm * g.pixscale
    return None


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
    log: list[str],
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
    log.append(
        f"{ref.survey}: {len(ref)} reference stars, {len(i1)} matched within "
        f"{match.radius_arcsec:.2f} arcsec ({how}; {expected:.1f} expected by chance)"
    )
    failure = None
    if len(i1) and not _significant(len(i1), expected):
        failure = (
            f"{len(i1)} matches within {match.radius_arcsec:.1f} arcsec are no more than the "
            f"{expected:.1f} expected by chance, even after searching for an offset up to 10 "
            "arcsec: check the frame's astrometry (WCS) or matchDist"
        )
        log.append(f"{ref.survey}: {failure}")
    sigma = median(sep) / 1.1774 if len(sep) else 0.0
    resolved = np.zeros(len(ref), dtype=bool)
    resolved[i2] = True
    if len(i1) > MAX_CALIBRATORS:
        # An evenly spaced subset: the zero point of 3000 stars is already limited by
        # systematics, and every later step (crowding, fits, error model) scales with it.
        keep = np.linspace(0, len(i1) - 1, MAX_CALIBRATORS).astype(np.int64)
        log.append(f"{ref.survey}: {MAX_CALIBRATORS} of the {len(i1)} matched stars used")
        i1, i2, sep = i1[keep], i2[keep], sep[keep]
    return SurveyMatch(
        ref, ref_sky, match, i1, i2, sep, resolved, float(sigma), float(expected), failure
    )


def _fit_survey(
    cleaned: SourceCatalog,
    sky: Sky,
    survey: SurveyMatch,
    crowd_radius: float,
    log: list[str],
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
            log.append(
                f"{ref.survey}/{band}: {len(j1) - keep.sum()} of {len(j1)} calibrators dropped "
                f"for neighbours within {crowd_radius:.1f} arcsec (adding over {allowed:.0%} "
                "to their flux)"
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
            log.append(
                f"{ref.survey}/{band}: too few stars for a colour term; the instrument's "
                f"history gives {fit.colour_term:+.3f} ± {fit.colour_term_prior_err:.3f}"
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
        log.append(_describe_fit(ref.survey, band, fit))
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
    log: list[str],
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
        log.append(f"forced filter {wanted}: {len(pool)} candidate(s)")
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
            log.append(
                f"none of the observatory's filters ({', '.join(allowed_filters)}) calibrates; "
                "choosing among all bands"
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
            log.append(
                "few stars: the zero point of "
                + ", ".join(f"{c.survey}/{c.band} ({distance[id(c)]:.1f} sigma)" for c in expected)
                + " agrees with the instrument's history; the closest is preferred"
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
    chosen: Candidate, cleaned: SourceCatalog, catalog: SourceCatalog, log: list[str]
) -> tuple[SourceCatalog, SourceCatalog]:
    """Errors from the calibrators' magnitude-scatter relation; the chosen band is refitted."""
    band_mag, band_err = chosen.match.ref.bands[chosen.band]
    # Every matched star, not only the isolated ones kept for the fit: they reach fainter.
    inst, residual, ref_err, _ = matched_residuals(chosen, cleaned)
    model = fit_error_model(inst, residual, ref_err, faintest_detections(cleaned.mag))
    if model is None:
        log.append("no MAGERR column and too few calibrators to estimate errors from")
        return cleaned, catalog
    log.append(
        f"no MAGERR column: photometric errors estimated from the scatter of the "
        f"{len(inst)} matched stars against magnitude ({model.describe()})"
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
