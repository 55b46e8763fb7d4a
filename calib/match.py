"""Crossmatch on the sphere without scipy: a hash grid over unit vectors.

Unit vectors are binned into cubes at least as large as the search radius (as a chord), so
every partner of a point lies in its own or one of the 26 neighbouring cubes; neighbours are
found with ``searchsorted`` on the sorted cube keys, three cubes adjacent along z at a time
(their keys are consecutive). This costs O(n log n) and stays linear
in memory for 50k x 50k frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ARCSEC = np.pi / 180.0 / 3600.0
_MIN_CELL_ARCSEC = 1.0  # keeps cube keys within int64 for any radius
_NEIGHBOURS = [(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)]


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """(n, 3) Cartesian unit vectors of ICRS positions in degrees."""
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    cos_dec = np.cos(dec)
    return np.column_stack((cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)))


def _chord_to_arcsec(chord: np.ndarray) -> np.ndarray:
    return 2.0 * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0)) / ARCSEC


def pairs_within(
    ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray, radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs closer than ``radius_arcsec``: indices into 1 and 2 and separations (arcsec)."""
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    if len(ra1) == 0 or len(ra2) == 0 or not radius_arcsec > 0:
        return empty
    xyz1, xyz2 = unit_vectors(ra1, dec1), unit_vectors(ra2, dec2)
    chord = 2.0 * np.sin(min(radius_arcsec, 180 * 3600.0) * ARCSEC / 2.0)
    cell = max(chord, 2.0 * np.sin(_MIN_CELL_ARCSEC * ARCSEC / 2.0))
    size = int(np.ceil(2.0 / cell)) + 3

    def cube(xyz: np.ndarray) -> np.ndarray:
        return np.floor((xyz + 1.0) / cell).astype(np.int64) + 1

    c1 = cube(xyz1)
    keys1 = (c1[:, 0] * size + c1[:, 1]) * size + c1[:, 2]
    order1 = np.argsort(keys1, kind="stable")
    keys1 = keys1[order1]  # sorted probes make searchsorted cache-friendly
    c2 = cube(xyz2)
    keys2 = (c2[:, 0] * size + c2[:, 1]) * size + c2[:, 2]
    order2 = np.argsort(keys2, kind="stable")
    sorted2 = keys2[order2]

    found1, found2 = [], []
    for di, dj in _NEIGHBOURS:
        probe = keys1 + (di * size + dj) * size
        lo = np.searchsorted(sorted2, probe - 1, side="left")
        hi = np.searchsorted(sorted2, probe + 1, side="right")
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            continue
        idx1 = np.repeat(order1, counts)
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        idx2 = order2[starts + np.arange(total)]
        found1.append(idx1)
        found2.append(idx2)
    if not found1:
        return empty
    i1, i2 = np.concatenate(found1), np.concatenate(found2)
    d = np.linalg.norm(xyz1[i1] - xyz2[i2], axis=1)
    keep = d <= chord
    return i1[keep], i2[keep], _chord_to_arcsec(d[keep])


def crossmatch(
    ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray, radius_arcsec: float
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
    i1, i2, sep = pairs_within(ra1, dec1, ra2, dec2, radius_arcsec)
    if len(i1) == 0:
        return i1, i2, sep
    nearest_for_1 = _nearest(i1, sep)
    nearest_for_2 = _nearest(i2, sep)
    mutual = np.intersect1d(nearest_for_1, nearest_for_2, assume_unique=True)
    order = np.argsort(i1[mutual], kind="stable")
    chosen = mutual[order]
    return i1[chosen], i2[chosen], sep[chosen]


def _nearest(owner: np.ndarray, sep: np.ndarray) -> np.ndarray:
    """Index of the closest pair for each distinct owner (ties: first)."""
    order = np.lexsort((sep, owner))
    first = np.ones(len(order), dtype=bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    return np.sort(order[first])


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
    ra1: np.ndarray,
    dec1: np.ndarray,
    ra2: np.ndarray,
    dec2: np.ndarray,
    *,
    search_radius_arcsec: float = 10.0,
    min_radius_arcsec: float = 1.0,
    default_radius_arcsec: float = 2.0,
    min_pairs: int = 5,
) -> MatchRadius:
    """Choose the crossmatch radius from the astrometric offsets of catalogue 1 vs 2.

    Match generously, take the median offset as the systematic shift (catalogues are often
    off by 1-3"), then set the radius to ~3 sigma of the remaining offsets, which follow a
    Rayleigh law (sigma = median / 1.177). Chance pairs in the generous match are trimmed by
    iterating on the shifted offsets. With fewer than ``min_pairs`` pairs, nothing can be
    measured: no shift and ``default_radius_arcsec``.
    """
    i1, i2, _ = crossmatch(ra1, dec1, ra2, dec2, search_radius_arcsec)
    if len(i1) < min_pairs:
        return MatchRadius(default_radius_arcsec, 0.0, 0.0, len(i1))
    dx, dy = _offsets_arcsec(ra1[i1], dec1[i1], ra2[i2], dec2[i2])
    keep = np.ones(len(dx), dtype=bool)
    shift_x = shift_y = 0.0
    radius = search_radius_arcsec
    for _ in range(5):
        shift_x, shift_y = float(np.median(dx[keep])), float(np.median(dy[keep]))
        r = np.hypot(dx - shift_x, dy - shift_y)
        sigma = float(np.median(r[keep])) / 1.1774
        radius = float(np.clip(3.0 * sigma, min_radius_arcsec, search_radius_arcsec))
        new_keep = r <= radius
        if new_keep.sum() < min_pairs or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return MatchRadius(radius, shift_x, shift_y, int(keep.sum()))
