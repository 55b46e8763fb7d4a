"""HEALPix NESTED helpers shared by ingest and queries.

Every pixel (order k, index p) is handled as the half-open range of order-29 pixels
``[p << 2(29-k), (p+1) << 2(29-k))`` — the ``_healpix_29`` value of a star falls in the range
of every pixel that contains it, at any order.
"""

from __future__ import annotations

import healpy as hp
import numpy as np

ORDER_29 = 29
NSIDE_29 = 1 << ORDER_29


def healpix_29(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Order-29 NESTED pixel (int64) of positions in degrees."""
    return hp.ang2pix(NSIDE_29, ra_deg, dec_deg, nest=True, lonlat=True).astype(np.int64)


def shift(order: int) -> int:
    """Bits between a pixel index at ``order`` and order 29."""
    return 2 * (ORDER_29 - order)


def pixel_ranges(order: int, pixels: np.ndarray) -> np.ndarray:
    """Merged ``(n, 2)`` order-29 ranges covering NESTED ``pixels`` at ``order``."""
    pixels = np.unique(np.asarray(pixels, dtype=np.int64))
    if pixels.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    breaks = np.flatnonzero(np.diff(pixels) != 1) + 1
    starts = pixels[np.r_[0, breaks]]
    ends = pixels[np.r_[breaks - 1, pixels.size - 1]] + 1
    s = shift(order)
    return np.stack([starts << s, ends << s], axis=1)


def subtract_range(ranges: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """``ranges`` minus the range ``[lo, hi)``."""
    out = []
    for a, b in ranges:
        if b <= lo or a >= hi:
            out.append((a, b))
            continue
        if a < lo:
            out.append((a, lo))
        if b > hi:
            out.append((hi, b))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def rows_in_ranges(sorted_hp29: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Indices of rows of a ``_healpix_29``-sorted array that fall in ``ranges``."""
    if ranges.size == 0 or sorted_hp29.size == 0:
        return np.empty(0, dtype=np.int64)
    lo = np.searchsorted(sorted_hp29, ranges[:, 0], side="left")
    hi = np.searchsorted(sorted_hp29, ranges[:, 1], side="left")
    keep = hi > lo
    lo, hi = lo[keep], hi[keep]
    if lo.size == 1:
        return np.arange(lo[0], hi[0], dtype=np.int64)
    lengths = hi - lo
    offsets = np.repeat(lo - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
    return np.arange(lengths.sum(), dtype=np.int64) + offsets


def radec_to_vec(ra_deg: float, dec_deg: float) -> np.ndarray:
    """Unit vector of a position in degrees."""
    return hp.ang2vec(ra_deg, dec_deg, lonlat=True)


def query_order(radius_deg: float, lo: int = 0, hi: int = 12) -> int:
    """An order whose pixels are about a third of ``radius_deg``: fine enough to prune rows,
    coarse enough that ``query_disc`` stays cheap."""
    order = lo
    while order < hi and hp.nside2resol(1 << (order + 1), arcmin=True) / 60.0 > radius_deg / 3.0:
        order += 1
    return order


def disc_ranges(ra_deg: float, dec_deg: float, radius_deg: float, order: int) -> np.ndarray:
    """Order-29 ranges of every order-``order`` pixel overlapping the disc (a superset)."""
    if radius_deg >= 180.0:
        return np.array([[0, 12 << shift(0)]], dtype=np.int64)
    pixels = hp.query_disc(
        1 << order, radec_to_vec(ra_deg, dec_deg), np.radians(radius_deg), inclusive=True, nest=True
    )
    return pixel_ranges(order, pixels)


def within(
    ra_deg: np.ndarray, dec_deg: np.ndarray, ra0: float, dec0: float, radius_deg: float
) -> np.ndarray:
    """Mask of positions within ``radius_deg`` of (ra0, dec0); all in degrees."""
    ra = np.radians(ra_deg)
    dec = np.radians(dec_deg)
    d0 = np.radians(dec0)
    cosd = np.sin(dec) * np.sin(d0) + np.cos(dec) * np.cos(d0) * np.cos(ra - np.radians(ra0))
    return cosd >= np.cos(np.radians(min(radius_deg, 180.0)))


def angular_distance_deg(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle distance in degrees (haversine, accurate at small separations)."""
    ra1, dec1, ra2, dec2 = (
        np.radians(np.asarray(x, dtype=np.float64)) for x in (ra1, dec1, ra2, dec2)
    )
    a = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))


def propagate(ra_deg, dec_deg, pmra_masyr, pmdec_masyr, years: float):
    """Positions moved by ``years`` of proper motion (``pmra`` includes cos(dec), as Gaia's).

    A linear step on the sphere, exact to far below a crossmatch radius for decades of motion
    away from the poles; stars without a proper motion (NaN) stay where they are.
    """
    ra = np.asarray(ra_deg, dtype=np.float64)
    dec = np.asarray(dec_deg, dtype=np.float64)
    pmra = np.nan_to_num(np.asarray(pmra_masyr, dtype=np.float64))
    pmdec = np.nan_to_num(np.asarray(pmdec_masyr, dtype=np.float64))
    vec = hp.ang2vec(ra, dec, lonlat=True).reshape(-1, 3)
    r, d = np.radians(ra), np.radians(dec)
    east = np.stack([-np.sin(r), np.cos(r), np.zeros_like(r)], axis=-1)
    north = np.stack([-np.sin(d) * np.cos(r), -np.sin(d) * np.sin(r), np.cos(d)], axis=-1)
    step = np.radians(years / 3.6e6)
    moved = vec + step * (pmra[:, None] * east + pmdec[:, None] * north)
    new_ra, new_dec = hp.vec2ang(moved / np.linalg.norm(moved, axis=1)[:, None], lonlat=True)
    return np.asarray(new_ra) % 360.0, np.asarray(new_dec)
