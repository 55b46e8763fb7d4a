"""One consistent light curve from many telescopes: the systematic offsets between photometric
systems, measured on the transient itself, and the points that disagree with their night.

A system is an (observatory, filter): the same band through two telescopes differs by colour
terms, apertures and reference surveys, and the offset a transient shows between them is what
matters for its light curve. Offsets come from near-simultaneous points (within `WINDOW_DAYS`,
the same night, same band) as a weighted, clipped mean of the differences, with the scatter the
errors do not explain (the transient's own change within the night among it). Each band's
systems are then tied to one reference (the system with most points) by weighted least squares
over every measured pair, so two systems never seen on the same night can still be aligned
through a third.

Pure numpy; the web tier adds the results to the light curve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from .instrument import robust_weighted_mean

#: Points closer in time than this are near-simultaneous (one night).
WINDOW_DAYS = 0.5
#: A point is an outlier beyond this many standard deviations from most of its comparisons.
OUTLIER_SIGMA = 3.0
#: ... and needs this many comparisons with other observatories' points to be judged.
MIN_COMPARISONS = 2

System = tuple[str, str]  # (observatory, filter)


@dataclass(frozen=True)
class Point:
    """A detection on the light curve (upper limits take no part)."""

    observatory: str
    filter: str
    mjd: float
    mag: float
    err: float

    @property
    def system(self) -> System:
        return (self.observatory, self.filter)


@dataclass(frozen=True)
class PairOffset:
    """``offset`` = mag(a) − mag(b) of the same band, measured on ``n_pairs`` near-simultaneous
    point pairs; ``scatter`` is what the points' errors do not explain."""

    filter: str
    observatory_a: str
    observatory_b: str
    offset: float
    offset_err: float
    scatter: float
    n_pairs: int

    def to_dict(self) -> dict:
        return {k: _plain(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class SystemOffset:
    """What to subtract from a system's magnitudes to put them on its band's ``reference``
    system (0 for the reference; None when no pair of points ties it to the reference)."""

    observatory: str
    filter: str
    reference: str
    offset: float | None
    offset_err: float | None
    n_points: int

    def to_dict(self) -> dict:
        return {k: _plain(v) for k, v in self.__dict__.items()}


def _near_pairs(a: list[Point], b: list[Point], window: float) -> list[tuple[Point, Point]]:
    """Each point of `a` with the point of `b` nearest in time, when within `window`."""
    if not b:
        return []
    order = np.argsort([p.mjd for p in b])
    tb = np.array([b[k].mjd for k in order])
    ta = np.array([p.mjd for p in a])
    right = np.minimum(np.searchsorted(tb, ta), len(tb) - 1)
    left = np.maximum(right - 1, 0)
    nearest = np.where(np.abs(tb[left] - ta) <= np.abs(tb[right] - ta), left, right)
    ok = np.abs(tb[nearest] - ta) <= window
    return [(a[i], b[order[nearest[i]]]) for i in np.flatnonzero(ok)]


def _by_system(points: Sequence[Point]) -> dict[System, list[Point]]:
    out: dict[System, list[Point]] = {}
    for p in points:
        if math.isfinite(p.mag) and math.isfinite(p.err) and p.err > 0:
            out.setdefault(p.system, []).append(p)
    return out


def pair_offsets(points: Sequence[Point], window: float = WINDOW_DAYS) -> list[PairOffset]:
    """The offset between every two observatories' systems of one band that share a night.

    Pairs are formed from the system with fewer points (each of its points with the nearest of
    the other's), so no point counts twice on the side that has fewer."""
    systems = _by_system(points)
    out = []
    for sa, sb in combinations(sorted(systems), 2):
        if sa[1] != sb[1] or sa[0] == sb[0]:
            continue
        a, b = systems[sa], systems[sb]
        if len(a) <= len(b):
            pairs = _near_pairs(a, b, window)
        else:
            pairs = [(pa, pb) for pb, pa in _near_pairs(b, a, window)]
        if not pairs:
            continue
        diff = [pa.mag - pb.mag for pa, pb in pairs]
        err = [math.hypot(pa.err, pb.err) for pa, pb in pairs]
        mean = robust_weighted_mean(diff, err)
        if mean is None:
            continue
        offset, offset_err, scatter, n = mean
        out.append(PairOffset(sa[1], sa[0], sb[0], offset, offset_err, scatter, n))
    return out


def system_offsets(points: Sequence[Point], pairs: Sequence[PairOffset]) -> list[SystemOffset]:
    """Each system's offset from its band's reference system (the one with most points),
    by weighted least squares over the pair offsets of the systems connected to it."""
    systems = _by_system(points)
    out = []
    for band in sorted({s[1] for s in systems}):
        names = sorted(
            (s[0] for s in systems if s[1] == band), key=lambda o: (-len(systems[(o, band)]), o)
        )
        reference = names[0]
        band_pairs = [p for p in pairs if p.filter == band]
        connected = _connected(reference, band_pairs)
        unknowns = [o for o in names if o in connected and o != reference]
        solved: dict[str, tuple[float, float]] = {reference: (0.0, 0.0)}
        if unknowns:
            index = {o: i for i, o in enumerate(unknowns)}
            rows, rhs, weights = [], [], []
            for p in band_pairs:
                if p.observatory_a not in connected:
                    continue
                row = np.zeros(len(unknowns))
                if p.observatory_a in index:
                    row[index[p.observatory_a]] += 1.0
                if p.observatory_b in index:
                    row[index[p.observatory_b]] -= 1.0
                rows.append(row)
                rhs.append(p.offset)
                weights.append(1.0 / max(p.offset_err, 1e-4) ** 2)
            a, y, w = np.array(rows), np.array(rhs), np.array(weights)
            normal = a.T @ (a * w[:, None])
            cov = np.linalg.pinv(normal)
            x = cov @ (a.T @ (w * y))
            for o, i in index.items():
                solved[o] = (float(x[i]), float(math.sqrt(max(cov[i, i], 0.0))))
        for o in names:
            offset, err = solved.get(o, (None, None))
            out.append(SystemOffset(o, band, reference, offset, err, len(systems[(o, band)])))
    return out


def _connected(start: str, pairs: Sequence[PairOffset]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        o = todo.pop()
        for p in pairs:
            for x, y in ((p.observatory_a, p.observatory_b), (p.observatory_b, p.observatory_a)):
                if x == o and y not in seen:
                    seen.add(y)
                    todo.append(y)
    return seen


def outliers(
    points: Sequence[Point],
    pairs: Sequence[PairOffset],
    window: float = WINDOW_DAYS,
    sigma: float = OUTLIER_SIGMA,
) -> list[bool]:
    """For each point, whether it disagrees with most of the same-night, same-band points of
    other observatories beyond their errors plus the offset's error (the offset between the two
    systems is allowed for). A point with fewer than `MIN_COMPARISONS` such points is not
    judged: with one other point there is no telling which of the two is wrong."""
    offsets: dict[tuple[System, System], tuple[float, float]] = {}
    for p in pairs:
        a, b = (p.observatory_a, p.filter), (p.observatory_b, p.filter)
        offsets[(a, b)] = (p.offset, math.hypot(p.offset_err, p.scatter))
        offsets[(b, a)] = (-p.offset, math.hypot(p.offset_err, p.scatter))
    systems = sorted({p.system for p in points})
    code = {s: k for k, s in enumerate(systems)}
    offset = np.zeros((len(systems), len(systems)))
    offset_err = np.zeros_like(offset)
    for (a, b), (value, err) in offsets.items():
        if a in code and b in code:
            offset[code[a], code[b]], offset_err[code[a], code[b]] = value, err
    mjd = np.array([p.mjd for p in points], dtype=float)
    mag = np.array([p.mag for p in points], dtype=float)
    err = np.array([p.err for p in points], dtype=float)
    system = np.array([code[p.system] for p in points], dtype=np.int64)
    observatory = np.array([p.observatory for p in points], dtype=object)
    band = np.array([p.filter for p in points], dtype=object)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(mjd) & np.isfinite(mag) & np.isfinite(err) & (err > 0)
    flags = np.zeros(len(points), dtype=bool)
    for f in set(band[valid]):
        idx = np.flatnonzero(valid & (band == f))
        idx = idx[np.argsort(mjd[idx], kind="stable")]
        t = mjd[idx]
        lo = np.searchsorted(t, t - window, side="left")
        hi = np.searchsorted(t, t + window, side="right")
        for k, i in enumerate(idx):
            near = idx[lo[k] : hi[k]]
            near = near[observatory[near] != observatory[i]]
            if len(near) < MIN_COMPARISONS:
                continue  # with one other point there is no telling which is wrong
            spread = np.sqrt(
                err[i] ** 2 + err[near] ** 2 + offset_err[system[i], system[near]] ** 2
            )
            z = (mag[i] - mag[near] - offset[system[i], system[near]]) / np.maximum(spread, 1e-6)
            flags[i] = np.count_nonzero(np.abs(z) > sigma) * 2 > len(near)
    return flags.tolist()


def _plain(value):
    """JSON-safe: python floats, None for a non-finite one."""
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
