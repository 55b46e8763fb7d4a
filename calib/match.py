"""Crossmatch on the sphere: a hash grid over unit vectors.

Unit vectors are binned into cubes twice as large as the search radius (as a chord), so
every partner of a point lies in its own cube or in a neighbour on the side of the cube the
point sits in; neighbours are found with ``searchsorted`` on the sorted cube keys, two cubes
adjacent along z at a time (their keys are consecutive). This costs O(n log n) and stays
linear in memory for 50k x 50k frames.

`auto_crossmatch` matches once per survey: the generous match that measures the radius and
the shift already holds every pair of the final match, which is only filtered from it.

Positions come as `Sky` objects holding their unit vectors: a frame's catalogue and reference
are searched several times (match, crowding, completeness, saturation, target), and the
trigonometry would otherwise cost as much as the searches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .stats import median

ARCSEC = np.pi / 180.0 / 3600.0
_MIN_CELL_ARCSEC = 1.0  # keeps cube keys within int64 for any radius
_MAX_SWEEP_COMPARISONS = 32  # per point, on average, before `duplicates` uses the grid
# Automatic radius: generous match that measures the radius and the shift, the smallest
# radius allowed, and the radius used when fewer than MIN_PAIRS pairs leave nothing to measure.
SEARCH_RADIUS_ARCSEC = 10.0
MIN_RADIUS_ARCSEC = 1.0
DEFAULT_RADIUS_ARCSEC = 2.0
MIN_PAIRS = 5
_EMPTY = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))


@dataclass(frozen=True)
class Sky:
    """ICRS positions in degrees and their unit vectors (a (3, n) array), computed once."""

    ra: np.ndarray
    dec: np.ndarray
    xyz: np.ndarray = field(repr=False)

    @classmethod
    def at(cls, ra_deg: np.ndarray, dec_deg: np.ndarray) -> Sky:
        ra = np.asarray(ra_deg, dtype=np.float64)
        dec = np.asarray(dec_deg, dtype=np.float64)
        return cls(ra, dec, _unit_rows(ra, dec))

    def __len__(self) -> int:
        return len(self.ra)

    def take(self, index: np.ndarray) -> Sky:
        """The positions picked by a boolean mask or an index array (no trigonometry)."""
        return Sky(self.ra[index], self.dec[index], self.xyz[:, index])


def _chord_to_arcsec(chord: np.ndarray) -> np.ndarray:
    return 2.0 * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0)) / ARCSEC


def _chord(radius_arcsec: float) -> float:
    """Chord length on the unit sphere subtended by an angle in arcsec."""
    return 2.0 * np.sin(min(radius_arcsec, 180 * 3600.0) * ARCSEC / 2.0)


def _unit_rows(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Unit vectors as a (3, n) array: gathering its rows is several times faster than
    gathering rows of an (n, 3) array."""
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    cos_dec = np.cos(dec)
    return np.stack((cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)))


def pairs_within(
    sky1: Sky, sky2: Sky, radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs closer than ``radius_arcsec``: indices into 1 and 2 and separations (arcsec)."""
    if len(sky1) == 0 or len(sky2) == 0 or not radius_arcsec > 0:
        return _EMPTY
    i1, i2, d = _pairs_chord(sky1.xyz, sky2.xyz, radius_arcsec)
    return i1, i2, _chord_to_arcsec(d)


def near(sky: Sky, ra: float, dec: float, radius_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``sky`` within ``radius_arcsec`` of one position and their separations
    (arcsec), in index order: the pairs `pairs_within` would find, without building a grid
    for a single point."""
    centre = _unit_rows(np.array([ra]), np.array([dec]))
    chord = _chord_lengths(sky.xyz, slice(None), centre, np.zeros(len(sky), dtype=np.int64))
    idx = np.flatnonzero(chord <= _chord(radius_arcsec))
    return idx, _chord_to_arcsec(chord[idx])


def duplicates(
    ra: np.ndarray, dec: np.ndarray, score: np.ndarray, radius_arcsec: float
) -> np.ndarray:
    """Which sources have a better one within ``radius_arcsec`` (a duplicate detection).

    Better means a lower `score` (e.g. magnitude error; NaN is the worst), ties going to the
    lower index; of every pair of sources closer than the radius the worse one is flagged. A
    sparse frame's pairs come from `_sweep_pairs`, several times faster than the grid. Listing
    the pairs of a clump
    costs N^2 (4,000 sources at one position: 8 million pairs, over a gigabyte), so when the
    sweep would compare too many the pairs are never listed: all sources in one cube of side
    chord/sqrt(3) are within the radius of each other, so only the best of each cube can
    survive, and only those few candidates are looked up in the hash grid. Each source is then
    seen by the candidates of the cubes around it at most: time O(N log N), memory O(N),
    however the sources crowd.
    """
    n = len(ra)
    flagged = np.zeros(n, dtype=bool)
    if n < 2 or not radius_arcsec > 0:
        return flagged
    xyz = _unit_rows(ra, dec)
    if np.isnan(score).any():
        score = np.where(np.isnan(score), np.inf, score)
    swept = _sweep_pairs(xyz, _chord(radius_arcsec))
    if swept is not None:
        i, j = swept  # i < j: on equal scores j is the worse
        flagged[np.where(score[j] < score[i], i, j)] = True
        return flagged
    by_rank = np.argsort(score, kind="stable")  # ties to the lower index
    rank = np.empty(n, dtype=np.int64)
    rank[by_rank] = np.arange(n)
    # The margin keeps a cube's diagonal below the chord despite rounding.
    side = _chord(radius_arcsec) / np.sqrt(3.0) * (1.0 - 1e-9)
    scaled = xyz.take(by_rank, axis=1)
    scaled /= side
    cube = np.floor(scaled, out=scaled).astype(np.int64)
    del scaled  # temporaries go as soon as they are used: a clump must stay O(N) in memory
    in_cube = np.lexsort(cube[::-1])  # stable: the best of each cube comes first
    cube = cube[:, in_cube]
    first = np.r_[True, np.any(cube[:, 1:] != cube[:, :-1], axis=0)]
    del cube
    by_cube_then_rank = by_rank[in_cube]
    del in_cube, by_rank
    candidates = by_cube_then_rank[first]
    flagged[by_cube_then_rank[~first]] = True  # a better source shares their cube
    del by_cube_then_rank, first
    i, j, _ = _pairs_chord(xyz[:, candidates], xyz, radius_arcsec)
    better = rank[j] < rank[candidates[i]]
    flagged[candidates[i[better]]] = True
    return flagged


def _sweep_pairs(xyz: np.ndarray, chord: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Pairs ``i < j`` of (3, n) unit vectors within ``chord``, or ``None`` if too costly.

    Partners are within one chord of each other along every axis, so once the points are
    sorted along the axis they spread most on, each one need only be compared with the points
    that follow it up to one chord further; the axis of second-largest spread discards most of
    those before the distance is computed. Distances are `_chord_lengths`, as in the grid, so
    both keep exactly the same pairs (a chord is never shorter than its projection on an
    axis). Coordinates are at most 1 in size, so 4 eps of slack in the two cuts on single
    axes covers their rounding. At most `_MAX_SWEEP_COMPARISONS` per point are made.
    """
    n = xyz.shape[1]
    sweep_axis, filter_axis = np.argsort(np.ptp(xyz, axis=1))[:0:-1]
    order = np.argsort(xyz[sweep_axis])
    ordered = xyz.take(order, axis=1)  # later gathers then read memory almost in sequence
    reach = chord + 4 * np.finfo(float).eps
    coord = ordered[sweep_axis]
    counts = np.searchsorted(coord, coord + reach, side="right") - np.arange(1, n + 1)
    total = int(counts.sum())  # comparisons: each point with those following it in reach
    if total > _MAX_SWEEP_COMPARISONS * n:
        return None
    first = np.repeat(np.arange(n), counts)
    second = first + np.arange(1, total + 1) - np.repeat(np.cumsum(counts) - counts, counts)
    across = ordered[filter_axis]
    close = np.abs(across[first] - across[second]) <= reach
    first, second = first[close], second[close]
    near = _chord_lengths(ordered, first, ordered, second) <= chord
    i, j = order[first[near]], order[second[near]]
    return np.minimum(i, j), np.maximum(i, j)


def _pairs_chord(
    xyz1: np.ndarray, xyz2: np.ndarray, radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`pairs_within` on (3, n) unit vectors, returning chord lengths instead of arcsec.

    The smaller set probes the larger one: the binary searches dominate the cost.
    """
    if xyz1.shape[1] > xyz2.shape[1]:
        i2, i1, d = _probe_pairs(xyz2, xyz1, radius_arcsec)
        return i1, i2, d
    return _probe_pairs(xyz1, xyz2, radius_arcsec)


def _probe_pairs(
    xyz1: np.ndarray, xyz2: np.ndarray, radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs found by looking up each point of 1 in the sorted cube keys of 2.

    Cubes are twice the search chord, so along each axis a partner lies in the point's own
    cube or in the neighbour on the side of the cube the point sits in: 2 x 2 columns of
    cubes, each searched as one run of consecutive keys (own and side cube along z). That is
    4 pairs of ``searchsorted`` per point instead of 9 with cubes the size of the chord.
    """
    chord = _chord(radius_arcsec)
    # The margin keeps partners at exactly the radius inside the searched cubes despite
    # rounding in the cube coordinates.
    cell = max(2.0 * chord, _chord(_MIN_CELL_ARCSEC)) * (1.0 + 1e-6)
    size = int(np.ceil(2.0 / cell)) + 3
    scaled1 = (xyz1 + 1.0) / cell
    cube1 = np.floor(scaled1)
    keys1 = _cube_keys(cube1.astype(np.int64) + 1, size)
    order1 = np.argsort(keys1)
    keys1 = keys1[order1]  # near-sorted probes make searchsorted cache-friendly
    side = np.take(np.where(scaled1 - cube1 >= 0.5, 1, -1), order1, axis=1)
    scaled2 = xyz2 + 1.0
    scaled2 /= cell  # in place: the larger set's temporaries are the peak of the memory used
    keys2 = _cube_keys(np.floor(scaled2, out=scaled2).astype(np.int64) + 1, size)
    del scaled2
    order2 = np.argsort(keys2)
    sorted2 = keys2[order2]
    del keys2
    first = keys1 + np.minimum(side[2], 0)  # lower of the two z-adjacent cubes of a column

    found1, found2 = [], []  # positions in the cube order of 1 and of 2
    for step in (0, side[0] * size * size, side[1] * size, (side[0] * size + side[1]) * size):
        lo = np.searchsorted(sorted2, first + step, side="left")
        counts = np.searchsorted(sorted2, first + step + 1, side="right") - lo
        has = np.flatnonzero(counts)
        if len(has) == 0:
            continue
        counts, lo = counts[has], lo[has]
        found1.append(np.repeat(has, counts))
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        found2.append(starts + np.arange(len(starts)))
    del sorted2
    if not found1:
        return _EMPTY
    p1, p2 = np.concatenate(found1), np.concatenate(found2)
    del found1, found2
    # Points in cube order: the candidates' coordinates are then read almost in sequence.
    d = _chord_lengths(xyz1.take(order1, axis=1), p1, xyz2.take(order2, axis=1), p2)
    keep = d <= chord
    return order1[p1[keep]], order2[p2[keep]], d[keep]


def _chord_lengths(
    xyz1: np.ndarray, i1: np.ndarray | slice, xyz2: np.ndarray, i2: np.ndarray
) -> np.ndarray:
    """Distances between columns ``i1`` of ``xyz1`` and ``i2`` of ``xyz2``, (3, n) arrays.

    Row by row, because 1-D gathers are much faster than gathering columns of a 2-D array;
    the sum is in ``np.linalg.norm``'s order, so the values are the same.
    """
    dx, dy, dz = (a[i1] - b[i2] for a, b in zip(xyz1, xyz2, strict=True))
    return np.sqrt(dx * dx + dy * dy + dz * dz)


def _cube_keys(cube: np.ndarray, size: int) -> np.ndarray:
    """One int64 key per cube of a (3, n) array; cubes adjacent along z have consecutive keys."""
    return (cube[0] * size + cube[1]) * size + cube[2]


def crossmatch(
    sky1: Sky, sky2: Sky, radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique nearest-neighbour match within ``radius_arcsec``.

    A pair is kept only when each source is the other's nearest partner, so a reference star
    is never used twice and close doubles do not steal each other's match.

    Returns
    -------
    i1, i2 : ndarray of int
        Indices into catalogue 1 and 2, sorted by ``i1``.
    sep_arcsec : ndarray
        Separation of each pair in arcsec.
    """
    return _mutual_nearest(*pairs_within(sky1, sky2, radius_arcsec))


def _mutual_nearest(
    i1: np.ndarray, i2: np.ndarray, sep: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the pairs whose members are each other's nearest partner, sorted by ``i1``."""
    if len(i1) == 0:
        return i1, i2, sep
    mutual = _nearest(i1, i2, sep) & _nearest(i2, i1, sep)
    # Each source of 1 is in at most one mutual pair: scattering the pairs by i1 sorts them.
    by_i1 = np.full(int(i1.max()) + 1, -1)
    by_i1[i1[mutual]] = np.flatnonzero(mutual)
    chosen = by_i1[by_i1 >= 0]
    return i1[chosen], i2[chosen], sep[chosen]


def _nearest(owner: np.ndarray, partner: np.ndarray, sep: np.ndarray) -> np.ndarray:
    """Mask of the closest pair of each distinct owner.

    Equal separations go to the lowest partner index, so the result does not depend on the
    order in which the pairs were found. Scatter-minimum instead of sorting the pairs.
    """
    n = int(owner.max()) + 1
    best = np.full(n, np.inf)
    np.minimum.at(best, owner, sep)
    closest = sep == best[owner]
    lowest = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(lowest, owner[closest], partner[closest])
    return closest & (partner == lowest[owner])


@dataclass(frozen=True)
class MatchRadius:
    """Crossmatch radius chosen from the data, and the systematic shift to apply first.

    ``shift_ra_arcsec`` is along the sky (already multiplied by cos(dec)); add the shift to the
    catalogue positions (see `apply_shift`) before matching with ``radius_arcsec``.
    """

    radius_arcsec: float
    shift_ra_arcsec: float
    shift_dec_arcsec: float
    npairs: int


def apply_shift(
    ra: np.ndarray, dec: np.ndarray, shift_ra_arcsec: float, shift_dec_arcsec: float
) -> tuple[np.ndarray, np.ndarray]:
    """Move positions (degrees) by a small tangent-plane offset in arcsec."""
    if shift_ra_arcsec == 0 and shift_dec_arcsec == 0:
        return ra, dec
    cos_dec = np.maximum(np.cos(np.radians(dec)), 1e-6)
    new_ra = (ra + shift_ra_arcsec / 3600.0 / cos_dec) % 360.0
    new_dec = np.clip(dec + shift_dec_arcsec / 3600.0, -90.0, 90.0)
    return new_ra, new_dec


def _offsets_arcsec(ra1, dec1, ra2, dec2) -> tuple[np.ndarray, np.ndarray]:
    """Tangent-plane offsets (2 minus 1) in arcsec; accurate for offsets of arcseconds."""
    dra = (ra2 - ra1 + 180.0) % 360.0 - 180.0
    return dra * np.cos(np.radians(dec1)) * 3600.0, (dec2 - dec1) * 3600.0


def auto_match_radius(
    sky1: Sky,
    sky2: Sky,
    *,
    search_radius_arcsec: float = SEARCH_RADIUS_ARCSEC,
    min_radius_arcsec: float = MIN_RADIUS_ARCSEC,
    default_radius_arcsec: float = DEFAULT_RADIUS_ARCSEC,
    min_pairs: int = MIN_PAIRS,
) -> MatchRadius:
    """Choose the crossmatch radius from the astrometric offsets of catalogue 1 vs 2.

    Pair generously around the most common offset (`_voted_pairs`), take the median offset
    of those pairs as the systematic shift (catalogues are often off by 1-3"), then set the
    radius to ~3 sigma of the remaining offsets, which follow a
    Rayleigh law (sigma = median / 1.177). Chance pairs in the generous match are trimmed by
    iterating on the shifted offsets. With fewer than ``min_pairs`` pairs, nothing can be
    measured: no shift and ``default_radius_arcsec``.
    """
    w1, w2, _ = pairs_within(sky1, sky2, search_radius_arcsec)
    i1, i2 = _voted_pairs(sky1, sky2, w1, w2, search_radius_arcsec)
    return _radius_from_matches(
        sky1.ra[i1], sky1.dec[i1], sky2.ra[i2], sky2.dec[i2],
        search_radius_arcsec, min_radius_arcsec, default_radius_arcsec, min_pairs,
    )  # fmt: skip


#: Cell of the offset vote (arcsec); the peak is refined over twice that distance.
VOTE_CELL_ARCSEC = 1.0


def _voted_pairs(
    sky1: Sky, sky2: Sky, w1: np.ndarray, w2: np.ndarray, search_radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs whose offsets agree with the most common one: each source's partner is the
    one nearest to where the systematic shift puts it (mutual), among all pairs ``w1, w2``.

    Pairing by nearest neighbour before the shift is known fails when the field is dense: with
    40,000 reference stars in 20', a star 5" off has two or three other stars nearer, and the
    median offset of nearest pairs was noise (a 5" WCS error went unfound). Every pair votes
    for its offset in cells of `VOTE_CELL_ARCSEC` (3 x 3 cells summed, so a peak split between
    cells still wins); chance pairs spread evenly, true ones pile up at the shift. The peak is
    refined by the median offset of the votes around it.
    """
    if len(w1) == 0:
        return w1, w2
    dx, dy = _offsets_arcsec(sky1.ra[w1], sky1.dec[w1], sky2.ra[w2], sky2.dec[w2])
    n = int(np.ceil(2 * search_radius_arcsec / VOTE_CELL_ARCSEC)) + 1
    ix = np.clip(((dx + search_radius_arcsec) / VOTE_CELL_ARCSEC).astype(np.int64), 0, n - 1)
    iy = np.clip(((dy + search_radius_arcsec) / VOTE_CELL_ARCSEC).astype(np.int64), 0, n - 1)
    votes = np.pad(np.bincount(ix * n + iy, minlength=n * n).reshape(n, n), 1)
    summed = sum(votes[a : a + n, b : b + n] for a in range(3) for b in range(3))
    peak_x, peak_y = np.unravel_index(int(np.argmax(summed)), (n, n))
    cx = (peak_x + 0.5) * VOTE_CELL_ARCSEC - search_radius_arcsec
    cy = (peak_y + 0.5) * VOTE_CELL_ARCSEC - search_radius_arcsec
    # The votes the peak window summed, and those within 2 cells of its centre: never none
    # (when votes tie, the first window holding them wins, and its centre may lie further
    # than 2 cells from every one of them: a sparse survey's few chance pairs did).
    counted = (np.abs(ix - peak_x) <= 1) & (np.abs(iy - peak_y) <= 1)
    around = counted | (np.hypot(dx - cx, dy - cy) <= 2 * VOTE_CELL_ARCSEC)
    shift_x, shift_y = median(dx[around]), median(dy[around])
    i1, i2, _ = _mutual_nearest(w1, w2, np.hypot(dx - shift_x, dy - shift_y))
    return i1, i2


def _radius_from_matches(
    ra1: np.ndarray,
    dec1: np.ndarray,
    ra2: np.ndarray,
    dec2: np.ndarray,
    search_radius_arcsec: float,
    min_radius_arcsec: float,
    default_radius_arcsec: float,
    min_pairs: int,
) -> MatchRadius:
    """`auto_match_radius` from the generously matched pairs (rows of 1 and 2 aligned)."""
    if len(ra1) < max(min_pairs, 1):
        return MatchRadius(default_radius_arcsec, 0.0, 0.0, len(ra1))
    dx, dy = _offsets_arcsec(ra1, dec1, ra2, dec2)
    keep = np.ones(len(dx), dtype=bool)
    shift_x = shift_y = 0.0
    radius = search_radius_arcsec
    for _ in range(5):
        shift_x, shift_y = median(dx[keep]), median(dy[keep])
        r = np.hypot(dx - shift_x, dy - shift_y)
        sigma = median(r[keep]) / 1.1774
        radius = float(np.clip(3.0 * sigma, min_radius_arcsec, search_radius_arcsec))
        new_keep = r <= radius
        if np.count_nonzero(new_keep) < min_pairs or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return MatchRadius(radius, shift_x, shift_y, int(np.count_nonzero(keep)))


def auto_crossmatch(sky1: Sky, sky2: Sky) -> tuple[MatchRadius, np.ndarray, np.ndarray, np.ndarray]:
    """`auto_match_radius`, then `crossmatch` of the shifted catalogue 1 at that radius.

    Same result as calling both, but the sky is searched once: every pair of the final match
    lay within radius + shift of each other before the shift, so when that is inside the
    generous search radius the final pairs are the generous ones re-measured after the shift
    and cut at the radius. Returns the radius and the match (``i1, i2, sep_arcsec``).
    """
    ra1, dec1, xyz2 = sky1.ra, sky1.dec, sky2.xyz
    wide = _EMPTY
    if len(sky1) and len(sky2):
        wide = _pairs_chord(sky1.xyz, xyz2, SEARCH_RADIUS_ARCSEC)
    w1, w2, chord = wide
    m1, m2 = _voted_pairs(sky1, sky2, w1, w2, SEARCH_RADIUS_ARCSEC)
    match = _radius_from_matches(
        ra1[m1], dec1[m1], sky2.ra[m2], sky2.dec[m2],
        SEARCH_RADIUS_ARCSEC, MIN_RADIUS_ARCSEC, DEFAULT_RADIUS_ARCSEC, MIN_PAIRS,
    )  # fmt: skip
    shift = float(np.hypot(match.shift_ra_arcsec, match.shift_dec_arcsec))
    if match.radius_arcsec + 1.01 * shift + 0.01 > SEARCH_RADIUS_ARCSEC:
        ra, dec = apply_shift(ra1, dec1, match.shift_ra_arcsec, match.shift_dec_arcsec)
        return match, *crossmatch(Sky.at(ra, dec), sky2, match.radius_arcsec)
    if shift > 0:  # only the generous pairs move: the final ones are among them
        ra, dec = apply_shift(ra1[w1], dec1[w1], match.shift_ra_arcsec, match.shift_dec_arcsec)
        chord = _chord_lengths(_unit_rows(ra, dec), slice(None), xyz2, w2)
    near = chord <= _chord(match.radius_arcsec)
    return match, *_mutual_nearest(w1[near], w2[near], _chord_to_arcsec(chord[near]))
