"""The alert page's finder chart: the reference stars around the alert, drawn from calserv's own
reference store (a cone query per survey, `refcats`; no outside service), north up and east
left, with the alert marked, a 1′ scale bar and marker sizes by magnitude.

The survey with the most stars in the field is drawn, in its preferred band.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from matplotlib.figure import Figure

from refcats.store import READ_ERRORS, RefStore

#: Radius of the chart.
RADIUS_ARCMIN = 3.0
#: Bands drawn by preference (the first a survey has), else its first band.
PREFERRED_BANDS = ("G", "V", "r", "R", "g", "i")
MAX_STARS = 3000


@dataclass(frozen=True)
class Field:
    """The stars of one survey around a position: offsets (arcmin, east and north) and mags."""

    survey: str
    band: str
    east: np.ndarray
    north: np.ndarray
    mag: np.ndarray


def _band(bands: tuple[str, ...]) -> str | None:
    return next((b for b in PREFERRED_BANDS if b in bands), bands[0] if bands else None)


def richest_field(store: RefStore, ra: float, dec: float) -> Field | None:
    """The survey with the most stars within RADIUS_ARCMIN, at today's epoch; None if none."""
    epoch = 2000.0 + (datetime.now(UTC) - datetime(2000, 1, 1, 12, tzinfo=UTC)).days / 365.25
    best = None
    for info in store.surveys():
        band = _band(info.bands)
        if band is None:
            continue
        try:
            t = store.cone(info.name, ra, dec, RADIUS_ARCMIN / 60, ["ra", "dec", band], epoch)
        except READ_ERRORS:  # an unreadable or unreachable survey: draw from the others
            continue
        if best is None or t.num_rows > best[2].num_rows:
            best = (info.name, band, t)
    if best is None or best[2].num_rows == 0:
        return None
    survey, band, t = best
    sra, sdec = (np.asarray(t[c].to_numpy(zero_copy_only=False), float) for c in ("ra", "dec"))
    mag = np.asarray(t[band].to_numpy(zero_copy_only=False), float)
    east = ((sra - ra + 180.0) % 360.0 - 180.0) * math.cos(math.radians(dec)) * 60.0
    north = (sdec - dec) * 60.0
    order = np.argsort(np.nan_to_num(mag, nan=99.0))[:MAX_STARS]  # the brightest if crowded
    return Field(survey, band, east[order], north[order], mag[order])


def finder_png(field: Field | None, title: str) -> bytes:
    """The chart as PNG bytes (a note instead of stars when no survey covers the field)."""
    fig = Figure(figsize=(4.2, 4.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    r = RADIUS_ARCMIN
    ax.set_xlim(r, -r)  # east to the left
    ax.set_ylim(-r, r)
    ax.set_aspect("equal")
    if field is None:
        ax.text(0, 0.8, "no reference stars here", ha="center", fontsize="small")
    else:
        good = np.isfinite(field.mag)
        faint = np.nanmax(field.mag) if good.any() else 20.0
        size = np.where(good, 4.0 + 8.0 * np.clip(faint - field.mag, 0, 8), 4.0) ** 1.3
        ax.scatter(field.east, field.north, s=size, c="#111111", linewidths=0)
        ax.set_title(
            f"{title}\n{field.survey} {field.band}, {len(field.mag)} stars",
            fontsize="small",
            parse_math=False,
        )
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):  # a crosshair with a gap at the alert
        ax.plot([0.25 * dx, 0.6 * dx], [0.25 * dy, 0.6 * dy], color="#c2185b", lw=1.5)
    ax.plot([-r + 0.3, -r + 1.3], [-r + 0.3, -r + 0.3], color="#000000", lw=2)
    ax.text(-r + 0.8, -r + 0.45, "1′", ha="center", fontsize="small")
    origin = (r - 1.5, r - 1.3)  # the compass, top left: north up, east left
    for label, tip in (("N", (r - 1.5, r - 0.35)), ("E", (r - 0.5, r - 1.3))):
        ax.annotate("", tip, origin, arrowprops={"arrowstyle": "->", "lw": 1})
        ax.text(*tip, label, ha="center", va="bottom" if label == "N" else "center",
                fontsize="small")  # fmt: skip
    ax.set_xlabel("east offset (arcmin)")
    ax.set_ylabel("north offset (arcmin)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
