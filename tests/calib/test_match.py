import tracemalloc

import numpy as np

from calib import auto_match_radius, crossmatch
from calib.match import Sky, apply_shift, auto_crossmatch, duplicates, near, pairs_within


def random_sky(rng, n, ra0=150.0, dec0=2.0, size=1.0):
    return ra0 + rng.uniform(-size, size, n), dec0 + rng.uniform(-size, size, n)


def brute_force_pairs(ra1, dec1, ra2, dec2, radius):
    from astropy.coordinates import SkyCoord

    c1, c2 = SkyCoord(ra1, dec1, unit="deg"), SkyCoord(ra2, dec2, unit="deg")
    sep = c1[:, None].separation(c2[None, :]).arcsec
    return {(i, j) for i, j in zip(*np.nonzero(sep <= radius), strict=True)}


def test_pairs_within_equals_brute_force_including_wraparound_and_pole():
    rng = np.random.default_rng(0)
    for ra0, dec0 in ((0.0, 0.0), (180.0, 89.99), (359.99, -30.0)):
        ra1, dec1 = random_sky(rng, 300, ra0, dec0, 0.01)
        ra2, dec2 = random_sky(rng, 300, ra0, dec0, 0.01)
        ra1, ra2 = ra1 % 360, ra2 % 360
        dec1, dec2 = np.clip(dec1, -90, 90), np.clip(dec2, -90, 90)
        i1, i2, sep = pairs_within(Sky.at(ra1, dec1), Sky.at(ra2, dec2), 20.0)
        assert set(zip(i1, i2, strict=True)) == brute_force_pairs(ra1, dec1, ra2, dec2, 20.0)
        assert np.all(sep <= 20.0)


def test_crossmatch_is_unique_nearest():
    rng = np.random.default_rng(1)
    ra, dec = random_sky(rng, 20000)
    ra2 = ra + rng.normal(0, 0.3, len(ra)) / 3600
    dec2 = dec + rng.normal(0, 0.3, len(ra)) / 3600
    i1, i2, sep = crossmatch(Sky.at(ra, dec), Sky.at(ra2, dec2), 2.0)
    assert len(np.unique(i1)) == len(i1) and len(np.unique(i2)) == len(i2)
    assert np.mean(i1 == i2) > 0.99 and len(i1) > 0.99 * len(ra)
    assert np.all(sep <= 2.0)
    # a double: both reference stars near one source, only the nearest is used
    i1, i2, _ = crossmatch(
        Sky.at([10.0], [0.0]), Sky.at([10.0, 10.0], np.array([1.5, 0.5]) / 3600), 2
    )
    assert list(i2) == [1]


def test_crossmatch_empty_inputs():
    empty = np.empty(0)
    found = crossmatch(Sky.at(empty, empty), Sky.at(np.ones(3), np.ones(3)), 1.0)
    assert all(len(a) == 0 for a in found)


def test_auto_radius_finds_systematic_offset():
    rng = np.random.default_rng(2)
    ra, dec = random_sky(rng, 5000, size=0.2)
    cos = np.cos(np.radians(dec))
    ra_cat = ra + (2.0 + rng.normal(0, 0.3, len(ra))) / 3600 / cos
    dec_cat = dec + (-1.0 + rng.normal(0, 0.3, len(ra))) / 3600
    m = auto_match_radius(Sky.at(ra_cat, dec_cat), Sky.at(ra, dec))
    assert abs(m.shift_ra_arcsec + 2.0) < 0.05 and abs(m.shift_dec_arcsec - 1.0) < 0.05
    assert 0.8 <= m.radius_arcsec <= 1.5


def test_auto_radius_finds_the_offset_of_a_dense_field():
    """80,000 reference stars in 20' and a catalogue 5" off: each source has four or five other
    stars nearer than its own, so the nearest pairs gave a shift of (-1.1, 0.8) and a 9"
    radius; the offset vote finds it."""
    rng = np.random.default_rng(4)
    ra, dec = random_sky(rng, 80_000, size=0.33)
    seen = rng.random(len(ra)) < 0.3  # the frame detects the brightest stars
    cos = np.cos(np.radians(dec[seen]))
    ra_cat = ra[seen] + (5.0 + rng.normal(0, 0.25, seen.sum())) / 3600 / cos
    dec_cat = dec[seen] + (-1.0 + rng.normal(0, 0.25, seen.sum())) / 3600
    cat, ref = Sky.at(ra_cat, dec_cat), Sky.at(ra, dec)
    for match in (auto_match_radius(cat, ref), auto_crossmatch(cat, ref)[0]):
        assert abs(match.shift_ra_arcsec + 5.0) < 0.05 and abs(match.shift_dec_arcsec - 1.0) < 0.05
        assert match.radius_arcsec < 1.5


def test_auto_radius_without_pairs_falls_back():
    m = auto_match_radius(Sky.at([10.0], [0.0]), Sky.at([20.0], [0.0]))
    assert m.radius_arcsec == 2.0 and m.shift_ra_arcsec == 0.0 and m.npairs == 0


def test_auto_crossmatch_equals_auto_radius_then_crossmatch():
    """The single-search match gives exactly the two-step result, shifted or not."""
    rng = np.random.default_rng(3)
    ra, dec = random_sky(rng, 3000, size=0.2)
    ra = np.append(ra, ra[:50])  # exact doubles in the reference: ties
    dec = np.append(dec, dec[:50])
    for shift in ((0.0, 0.0), (2.0, -1.0), (7.5, 5.0)):  # the last falls back to a new search
        cos = np.cos(np.radians(dec))
        ra_cat = ra + (shift[0] + rng.normal(0, 0.3, len(ra))) / 3600 / cos
        dec_cat = dec + (shift[1] + rng.normal(0, 0.3, len(ra))) / 3600
        cat, ref = Sky.at(ra_cat, dec_cat), Sky.at(ra, dec)
        match, i1, i2, sep = auto_crossmatch(cat, ref)
        assert match == auto_match_radius(cat, ref)
        moved = apply_shift(ra_cat, dec_cat, match.shift_ra_arcsec, match.shift_dec_arcsec)
        expected = crossmatch(Sky.at(*moved), ref, match.radius_arcsec)
        for got, want in zip((i1, i2, sep), expected, strict=True):
            np.testing.assert_array_equal(got, want)


def test_auto_crossmatch_without_reference_stars():
    match, i1, i2, sep = auto_crossmatch(Sky.at(np.ones(3), np.ones(3)), Sky.at([], []))
    assert match.radius_arcsec == 2.0 and match.npairs == 0
    assert len(i1) == len(i2) == len(sep) == 0


def _flag_worse_of_each_pair(ra, dec, score, radius):
    """The definition of `duplicates`: of every pair within the radius, the worse is flagged."""
    sky = Sky.at(ra, dec)
    j1, j2, _ = pairs_within(sky, sky, radius)
    lower = j1 < j2
    j1, j2 = j1[lower], j2[lower]
    flagged = np.zeros(len(ra), dtype=bool)
    flagged[np.where(score[j2] < score[j1], j1, j2)] = True
    return flagged


def test_duplicates_flag_the_worse_of_every_close_pair():
    """Near doubles, exact doubles with equal scores, a dense line of sources and a crowded
    ring round the pole give what the full list of pairs gives."""
    rng = np.random.default_rng(5)
    ra, dec = random_sky(rng, 3000, size=0.05)
    doubles = rng.choice(3000, 300, replace=False)
    ra = np.concatenate([ra, ra[doubles] + rng.normal(0, 0.3, 300) / 3600, ra[:20]])
    dec = np.concatenate([dec, dec[doubles] + rng.normal(0, 0.3, 300) / 3600, dec[:20]])
    strung = (np.linspace(10.0, 10.01, 2000), np.full(2000, 30.0))
    for ra_, dec_ in ((ra, dec), strung, (ra % 1.0, np.full(len(ra), 89.999))):
        score = rng.choice([0.01, 0.02, 0.03], len(ra_))
        for radius in (0.5, 5.0):
            got = duplicates(ra_, dec_, score, radius)
            assert got.any()
            np.testing.assert_array_equal(got, _flag_worse_of_each_pair(ra_, dec_, score, radius))


def test_duplicates_of_a_clump_stay_bounded():
    """6,000 sources at one position: the pair list would be 18 million pairs (N^2 growth)."""
    n = 6000
    score = np.linspace(0.05, 0.01, n)
    tracemalloc.start()
    flagged = duplicates(np.full(n, 10.0), np.full(n, 20.0), score, 1.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert flagged.sum() == n - 1 and not flagged[-1]
    assert peak < 20 * n * 8  # a few arrays of N, not N^2


def test_equal_separations_go_to_the_lowest_index():
    _, i2, _ = crossmatch(Sky.at([10.0], [0.0]), Sky.at(np.full(3, 10.0), np.zeros(3)), 1.0)
    assert list(i2) == [0]


def test_near_finds_the_pairs_within_of_one_position():
    rng = np.random.default_rng(6)
    sky = Sky.at(*random_sky(rng, 2000, size=0.01))
    idx, sep = near(sky, 150.0, 2.0, 20.0)
    _, j2, want = pairs_within(Sky.at([150.0], [2.0]), sky, 20.0)
    order = np.argsort(j2)
    np.testing.assert_array_equal(idx, j2[order])
    np.testing.assert_array_equal(sep, want[order])
    assert len(idx) > 0


def test_duplicates_count_a_nan_score_as_the_worst():
    ra, dec = np.array([10.0, 10.0 + 0.1 / 3600]), np.zeros(2)
    for score in (np.array([np.nan, 0.01]), np.array([0.01, np.nan])):
        np.testing.assert_array_equal(duplicates(ra, dec, score, 0.5), np.isnan(score))
