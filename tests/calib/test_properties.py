"""Adversarial inputs for every step of the calibration (hypothesis): empty, tiny, duplicated,
tied, collinear, NaN and sparse. Each function either answers with something usable or, for
the whole calibration, refuses with a `CalibrationError` naming the reason; nothing else (an
IndexError deep in a median, a ZeroDivisionError) may escape, because the worker reports
anything else as an internal error."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calib import CalibrationError, calibrate
from calib.blend import BlendKernel, decompose, fit_kernel, predicted_flux
from calib.catalog import SourceCatalog
from calib.completeness import completeness_50
from calib.match import (
    MIN_RADIUS_ARCSEC,
    SEARCH_RADIUS_ARCSEC,
    Sky,
    _voted_pairs,
    auto_crossmatch,
    crossmatch,
    pairs_within,
)
from calib.reference import RefCatalog
from calib.target import Saturation, measure_target
from calib.zeropoint import fit_zeropoint

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RA0, DEC0 = 150.0, 2.0


def offsets(max_size: int, span_arcsec: float = 30.0, nan: bool = False):
    """Lists of (east, north) offsets in arcsec from (RA0, DEC0), often on a 0.5" grid so
    that duplicates and ties are common; NaN positions when ``nan``."""
    cell = st.integers(-int(2 * span_arcsec), int(2 * span_arcsec)).map(lambda k: k / 2.0)
    coordinate = st.one_of(cell, st.floats(-span_arcsec, span_arcsec))
    if nan:
        coordinate = st.one_of(coordinate, st.just(math.nan))
    return st.lists(st.tuples(coordinate, coordinate), max_size=max_size)


def sky_of(points) -> Sky:
    east = np.array([p[0] for p in points], dtype=float)
    north = np.array([p[1] for p in points], dtype=float)
    return Sky.at(RA0 + east / 3600 / math.cos(math.radians(DEC0)), DEC0 + north / 3600)


@SETTINGS
@given(offsets(12, nan=True), offsets(12, nan=True), st.sampled_from([0.0, 0.4, 1.0, 5.0]))
def test_crossmatch_pairs_are_unique_and_within_the_radius(a, b, radius):
    i1, i2, sep = crossmatch(sky_of(a), sky_of(b), radius)
    assert len(set(i1.tolist())) == len(i1) and len(set(i2.tolist())) == len(i2)
    assert np.all((i1 >= 0) & (i1 < len(a))) and np.all((i2 >= 0) & (i2 < len(b)))
    assert np.all(sep <= radius + 1e-9)
    assert len(pairs_within(sky_of(a), sky_of(b), radius)[0]) >= len(i1)


@settings(max_examples=300, deadline=None)
@given(offsets(6, span_arcsec=15.0), offsets(6, span_arcsec=15.0))
def test_offset_vote_always_finds_a_shift(a, b):
    """A sparse survey's few chance pairs once left no vote near the peak window's centre
    (IndexError in the median)."""
    s1, s2 = sky_of(a), sky_of(b)
    w1, w2, _ = pairs_within(s1, s2, SEARCH_RADIUS_ARCSEC)
    v1, v2 = _voted_pairs(s1, s2, w1, w2, SEARCH_RADIUS_ARCSEC)
    assert len(set(v1.tolist())) == len(v1) and len(set(v2.tolist())) == len(v2)
    match, i1, i2, sep = auto_crossmatch(s1, s2)
    assert len(i1) == len(i2) == len(sep)
    assert MIN_RADIUS_ARCSEC <= match.radius_arcsec <= SEARCH_RADIUS_ARCSEC
    assert math.isfinite(match.shift_ra_arcsec) and math.isfinite(match.shift_dec_arcsec)
    assert np.all(sep <= match.radius_arcsec + 1e-6)


def test_offset_vote_of_one_chance_pair_between_tied_windows():
    """The smallest case of the crash: three chance pairs whose 3 x 3 windows tie."""
    s1 = Sky.at(np.array([10.00068161, 10.00518761]), np.array([0.00380028, 0.00457656]))
    s2 = Sky.at(
        np.array([10.00498223, 10.00324067, 10.00022343]),
        np.array([0.0039527, 0.00316125, 0.00458865]),
    )
    match, *_ = auto_crossmatch(s1, s2)
    assert match.radius_arcsec > 0


magnitudes = st.one_of(st.floats(8.0, 20.0), st.just(math.nan), st.just(99.0))
errors = st.one_of(st.floats(0.0, 0.5), st.just(math.nan))


@SETTINGS
@given(
    st.lists(st.tuples(magnitudes, errors, st.floats(-0.5, 0.5)), max_size=40),
    st.sampled_from(["none", "varied", "collinear"]),
    st.booleans(),
)
def test_zeropoint_fit_passes_with_finite_numbers_or_fails_with_a_reason(rows, colours, dup):
    if dup:
        rows = rows + rows  # every star twice: tied residuals, duplicated stars
    inst = np.array([r[0] for r in rows], dtype=float) - 25.0
    err = np.array([r[1] for r in rows], dtype=float)
    ref = inst + 25.0 + np.array([r[2] for r in rows], dtype=float) * 0.02
    colour = None
    if colours == "varied":
        colour = np.linspace(0.0, 1.5, len(rows))
    elif colours == "collinear":
        colour = np.full(len(rows), 0.7)  # no leverage on a colour term
    fit = fit_zeropoint(inst, err, ref, np.full(len(rows), 0.01), colour=colour)
    if fit.ok:
        assert math.isfinite(fit.zeropoint) and math.isfinite(fit.zeropoint_err)
        assert fit.zeropoint_err >= 0
        if fit.colour_term is not None:
            assert math.isfinite(fit.colour_term)
    else:
        assert fit.reason


@SETTINGS
@given(
    st.lists(st.tuples(st.one_of(st.floats(10, 22), st.just(math.nan)), st.booleans())),
    st.floats(0.0, 1.0),
)
def test_completeness_is_none_or_inside_the_magnitudes(rows, chance):
    mag = np.array([r[0] for r in rows], dtype=float)
    detected = np.array([r[1] for r in rows], dtype=bool)
    m50 = completeness_50(mag, detected, chance)
    if m50 is not None:
        finite = mag[np.isfinite(mag)]
        assert math.isfinite(m50)
        assert finite.min() - 1.0 <= m50 <= finite.max() + 1.0


def catalogue(points, mags) -> SourceCatalog:
    sky = sky_of(points)
    n = len(points)
    return SourceCatalog(
        ra=sky.ra,
        dec=sky.dec,
        mag=np.asarray(mags, dtype=float),
        mag_err=np.full(n, 0.02),
        flags=np.zeros(n, dtype=np.int64),
        columns={"mag": "MAG_AUTO", "mag_err": "MAGERR_AUTO"},
    )


@SETTINGS
@given(
    offsets(10, span_arcsec=6.0),
    st.lists(magnitudes, min_size=10, max_size=10),
    offsets(10, span_arcsec=6.0, nan=True),
    st.lists(st.one_of(st.floats(-12, -5), st.just(math.nan)), min_size=10, max_size=10),
    st.sampled_from([0.5, 2.0]),
)
def test_blend_decomposition_is_finite_or_says_nothing(src, mags, ref, ref_flux_mag, fwhm):
    if not src:
        return
    cat = catalogue(src, np.array(mags[: len(src)]) - 25.0)
    sky, ref_sky = sky_of(src), sky_of(ref)
    flux = predicted_flux(np.array(ref_flux_mag[: len(ref)]) + 25.0, None, 25.0, None, None)
    n = min(len(src), len(ref))
    resolved = np.zeros(len(ref), dtype=bool)
    kernel = fit_kernel(cat, sky, ref_sky, flux, (np.arange(n), np.arange(n)), resolved, fwhm)
    assert all(0.0 <= w <= 1.0 for w in kernel.weights) and math.isfinite(kernel.gain)
    for kern in (kernel, BlendKernel()):
        d = decompose(cat, sky, 0, (RA0, DEC0), ref_sky, flux, None, 1.0, fwhm, kern)
        assert d.contamination >= 0 and d.stars >= 0
        if math.isfinite(d.measured) and d.measured > 0:
            assert math.isfinite(d.snr)


@SETTINGS
@given(
    offsets(8, span_arcsec=5.0, nan=True),
    st.lists(magnitudes, min_size=8, max_size=8),
    st.lists(st.integers(0, 31), min_size=8, max_size=8),
)
def test_alert_measurement_is_a_magnitude_with_an_error_or_a_limit(points, mags, flags):
    cat = catalogue(points, np.array(mags[: len(points)]) - 25.0)
    cat.flags[:] = flags[: len(points)]
    sky = Sky.at(cat.ra, cat.dec)
    target = measure_target(
        cat, sky, RA0, DEC0, radius_arcsec=1.5, astrometric_sigma_arcsec=0.2,
        fwhm_arcsec=2.0, zeropoint=25.0, zeropoint_err=0.01, limiting_mag=19.0,
        saturation=Saturation(),
    )  # fmt: skip
    assert math.isfinite(target.mag)
    assert target.limit or (math.isfinite(target.mag_err) and target.mag_err > 0)


def field(rng: np.random.Generator, n: int, spread_arcsec: float):
    """A small catalogue and its reference (the same stars), zero point 25."""
    east, north = rng.uniform(-spread_arcsec, spread_arcsec, (2, n))
    sky = sky_of(list(zip(east, north, strict=True)))
    r = rng.uniform(11, 19, n)
    ref = RefCatalog.from_columns(
        "SIM",
        {"ra": sky.ra, "dec": sky.dec, "R": r, "R_err": np.full(n, 0.01),
         "V": r + 0.5, "V_err": np.full(n, 0.01)},
    )  # fmt: skip
    return sky, r, ref


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**31),
    st.integers(0, 60),
    st.sampled_from([0.0, 2.0, 20.0, 200.0]),
    st.sampled_from(["clean", "nan", "duplicated", "tied", "collinear"]),
    st.integers(0, 6),
)
def test_calibration_answers_or_refuses_with_a_reason(seed, n, spread, damage, sparse):
    """The whole calibration over any small frame, with a sparse second survey: a result
    whose numbers are usable, or a CalibrationError; never another exception."""
    rng = np.random.default_rng(seed)
    sky, r, ref = field(rng, n, spread)
    mag = r - 25.0 + rng.normal(0, 0.02, n)
    ra, dec = sky.ra.copy(), sky.dec.copy()
    if damage == "nan" and n:
        mag[rng.integers(0, n, max(n // 3, 1))] = np.nan
    elif damage == "duplicated":
        ra, dec, mag = np.r_[ra, ra], np.r_[dec, dec], np.r_[mag, mag]
    elif damage == "tied":
        mag = np.round(mag)
    elif damage == "collinear":
        dec = np.full_like(ra, DEC0)
    cat = SourceCatalog(
        ra=ra, dec=dec, mag=mag, mag_err=np.full(len(mag), 0.02),
        flags=np.zeros(len(mag), dtype=np.int64),
        columns={"mag": "MAG_AUTO", "mag_err": "MAGERR_AUTO"},
    )  # fmt: skip
    east, north = rng.uniform(-spread - 5, spread + 5, (2, sparse))
    gaia = sky_of(list(zip(east, north, strict=True)))
    g = rng.uniform(6, 10, sparse)
    sparse_ref = RefCatalog.from_columns(
        "GaiaDR3", {"ra": gaia.ra, "dec": gaia.dec, "G": g, "G_err": np.full(sparse, 0.003)}
    )
    try:
        result = calibrate(cat, [ref, sparse_ref], RA0, DEC0)
    except CalibrationError as e:
        assert str(e)
        return
    assert math.isfinite(result.mag) and math.isfinite(result.zeropoint)
    assert result.limit or (math.isfinite(result.mag_err) and result.mag_err > 0)


@SETTINGS
@given(
    measured=st.floats(-1e6, 1e6),
    measured_err=st.floats(0, 1e5),
    contamination=st.floats(0, 1e6),
    share=st.floats(0, 1),
    gain=st.floats(0.5, 2),
    zeropoint=st.floats(15, 30),
)
def test_a_blends_bound_on_the_alert_never_fails(
    measured, measured_err, contamination, share, gain, zeropoint
):
    """A source whose catalogued neighbours account for all its light, or more (a crowded
    image's forced aperture), leaves no bound (inf) rather than a math domain error; any bound
    drawn is no brighter than the whole source could hold."""
    from calib.blend import Decomposition

    d = Decomposition(0, measured, measured_err, contamination, 1, share, BlendKernel(gain=gain))
    bound = d.bound(zeropoint)
    assert bound == math.inf or math.isfinite(bound)
    if math.isfinite(bound) and measured > 0:
        whole = measured / gain / max(share, 1e-3)
        assert bound >= zeropoint - 2.5 * math.log10(whole) - 1e-9
