"""The light curve made consistent across observatories: each row's `outlier` flag, the offsets
between (observatory, filter) systems measured on the alert's own points, and, when asked for
(`aligned=1`, never by default), the rows moved onto each band's reference system
(`calib.intercalibration` has the statistics)."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is loaded on first use (web.ON_FIRST_USE), not when the app is created
    from calib.intercalibration import PairOffset, Point, SystemOffset


@lru_cache(maxsize=64)
def _measured(
    points: tuple[Point, ...],
) -> tuple[list[PairOffset], list[SystemOffset], list[bool]]:
    """The statistics of one set of points, kept per process: a light curve is read far more
    often than it changes, and 3000 points of 20 observatories take ~0.5 s."""
    from calib.intercalibration import outliers, pair_offsets, system_offsets

    pairs = pair_offsets(points)
    return pairs, system_offsets(points, pairs), outliers(points, pairs)


def consistency(rows: list[dict], aligned: bool = False) -> dict:
    """Set `outlier` on every row (limits: False) and, when `aligned`, apply each system's
    offset to its rows (`offset_applied`; the offset's error joins a detection's `magerr`).
    Returns `{"offsets": [pair offsets], "alignment": [system offsets]}`."""
    from calib.intercalibration import Point

    detections = [r for r in rows if r["magerr"] >= 0]
    points = tuple(
        Point(r["observatory"], r["filter"], r["mjd"], r["mag"], r["magerr"]) for r in detections
    )
    pairs, systems, flags = _measured(points)
    for r in rows:
        r["outlier"] = False
    for r, flagged in zip(detections, flags, strict=True):
        r["outlier"] = flagged
    if aligned:
        shift = {(s.observatory, s.filter): s for s in systems if s.offset is not None}
        for r in rows:
            s = shift.get((r["observatory"], r["filter"]))
            r["offset_applied"] = s.offset if s else None
            if s is None:
                continue
            r["mag"] -= s.offset
            if r["magerr"] >= 0:
                r["magerr"] = math.hypot(r["magerr"], s.offset_err)
    return {
        "offsets": [p.to_dict() for p in pairs],
        "alignment": [s.to_dict() for s in systems],
    }
