"""How a light curve looks, shared by the PNG (`web.lightcurve_png`), the interactive plot
(`web.lightcurve_bokeh`) and the alert page's HTML legend, so the three always agree: a colour
per filter, a marker per observatory, upper limits as a bar at the limit with an arrow pointing
fainter, a ring around points with target flags or warnings, outliers hollow (an unfilled marker
of their filter's colour), the magnitude axis range and its label, and the time axis range (MJD,
with UTC dates beside it and a "now" line when it is near).

Plain Python over light-curve rows (`web.lightcurve.lightcurve_rows`): no plotting library here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import cycle

#: Photometric systems by band name: Johnson-Cousins and Gaia bands are Vega magnitudes, the
#: SDSS-like lower-case bands (APASS, Pan-STARRS, SDSS) AB magnitudes.
VEGA_BANDS = frozenset({"U", "B", "V", "R", "I", "G", "BP", "RP", "J", "H", "K", "Ks"})
AB_BANDS = frozenset({"u", "g", "r", "i", "z", "y"})

#: Conventional colours of common photometric bands; others get the next colour of the cycle.
FILTER_COLOURS = {
    "U": "#7b3fb5",
    "u": "#7b3fb5",
    "B": "#1f4fd1",
    "g": "#2a9d3c",
    "V": "#3cae3c",
    "G": "#b8860b",  # Gaia G: gold, never the black of the observatory legend
    "BP": "#3060c0",
    "RP": "#b03030",
    "r": "#d14a1f",
    "R": "#d62728",
    "i": "#8c2d04",
    "I": "#7f1010",
    "z": "#5a3a1a",
    "clear": "#777777",
}
_SPARE_COLOURS = ("#17becf", "#bcbd22", "#e377c2", "#8c564b", "#ff7f0e", "#9467bd")
#: Ring drawn around points with target flags or warnings.
FLAG_COLOUR = "#c2185b"
NEUTRAL = "#000000"


@dataclass(frozen=True)
class Marker:
    """One observatory marker in the three renderings: Bokeh's name, matplotlib's code, and an
    SVG path in a 16×16 box for the HTML legend."""

    bokeh: str
    mpl: str
    svg: str


#: Markers per observatory. No downward triangle: a downward shape reads as an upper limit.
MARKERS = (
    Marker("circle", "o", "M3,8a5,5 0 1,0 10,0a5,5 0 1,0 -10,0Z"),
    Marker("square", "s", "M3.5,3.5H12.5V12.5H3.5Z"),
    Marker("triangle", "^", "M8,2.5L13.5,12.5H2.5Z"),
    Marker("diamond", "D", "M8,1.5L14,8L8,14.5L2,8Z"),
    Marker("hex", "h", "M8,1.5L13.6,4.75V11.25L8,14.5L2.4,11.25V4.75Z"),
    Marker(
        "star",
        "*",
        "M8,1.5L9.6,6.1H14.4L10.5,8.9L12,13.5L8,10.7L4,13.5L5.5,8.9L1.6,6.1H6.4Z",
    ),
    Marker("plus", "P", "M6,2H10V6H14V10H10V14H6V10H2V6H6Z"),
)
#: The upper-limit symbol of the HTML legend: a bar at the limit, an arrow down (fainter).
LIMIT_SVG = "M3,2.5H13M8,2.5V12"
LIMIT_HEAD_SVG = "M4.5,10.5L8,15L11.5,10.5Z"

#: MJD of the Unix epoch (1970-01-01T00:00Z).
MJD_UNIX = 40587.0
DAY_MS = 86_400_000.0


def is_limit(row: dict) -> bool:
    return row["magerr"] < 0


def is_outlier(row: dict) -> bool:
    """A detection that disagrees with same-night points of other observatories
    (`web.lightcurve_consistency`); an upper limit never is one."""
    return bool(row.get("outlier")) and not is_limit(row)


def is_flagged(row: dict) -> bool:
    return bool(row.get("target_flags") or row.get("warnings"))


def magnitude_label(filters: Sequence[str]) -> str:
    """The magnitude axis title naming the band systems, e.g. `magnitude (Vega: V, R; AB: g)`."""
    vega = [f for f in filters if f in VEGA_BANDS]
    ab = [f for f in filters if f in AB_BANDS]
    other = [f for f in filters if f not in VEGA_BANDS and f not in AB_BANDS]
    parts = [
        f"{name}: {', '.join(bands)}"
        for name, bands in (("Vega", vega), ("AB", ab), ("other", other))
        if bands
    ]
    return f"magnitude ({'; '.join(parts)})" if parts else "magnitude"


@dataclass(frozen=True)
class Legend:
    """What the legends list: filters with their colours, observatories with their markers,
    whether there are upper limits, flagged points and outliers."""

    filters: dict[str, str]
    observatories: dict[str, Marker]
    has_limits: bool
    has_flagged: bool
    has_outliers: bool


def legend_of(rows: Sequence[dict]) -> Legend:
    filters = sorted({r["filter"] for r in rows})
    spare = cycle(_SPARE_COLOURS)
    observatories = sorted({r["observatory"] for r in rows})
    return Legend(
        filters={f: FILTER_COLOURS.get(f) or next(spare) for f in filters},
        observatories=dict(zip(observatories, cycle(MARKERS), strict=False)),
        has_limits=any(is_limit(r) for r in rows),
        has_flagged=any(is_flagged(r) for r in rows),
        has_outliers=any(is_outlier(r) for r in rows),
    )


def arrow_length(rows: Sequence[dict]) -> float:
    """Length (mag) of an upper limit's arrow: a fixed share of the magnitude span, so it reads
    as an arrow whatever the span."""
    mags = [r["mag"] for r in rows] or [0.0]
    return max(0.12, 0.07 * max(0.5, max(mags) - min(mags)))


def mag_range(rows: Sequence[dict]) -> tuple[float, float]:
    """(bright, faint) ends of the magnitude axis: every detection with its error bar and every
    upper limit at its value with its whole arrow, padded. A limit is never drawn anywhere but
    at its value (the reader can zoom in on the detections)."""
    if not rows:
        return 10.0, 20.0
    arrow = arrow_length(rows)
    bright = min(r["mag"] - max(r["magerr"], 0.0) for r in rows)
    faint = max(r["mag"] + (arrow if is_limit(r) else r["magerr"]) for r in rows)
    pad = max(0.1, 0.06 * (faint - bright))
    return bright - pad, faint + pad


@dataclass(frozen=True)
class TimeRange:
    """The time axis: its MJD ends and the current MJD, and whether "now" is near enough to the
    points to be shown (within the span of the points, or 30 days, after the last one)."""

    start: float
    end: float
    now: float
    shows_now: bool


def time_range(rows: Sequence[dict], now_mjd: float | None = None) -> TimeRange:
    now = now_mjd if now_mjd is not None else time.time() / 86400.0 + MJD_UNIX
    mjds = [r["mjd"] for r in rows] or [now]
    first, last = min(mjds), max(mjds)
    shows_now = first <= now and now - last <= max(30.0, last - first)
    end = max(last, now) if shows_now else last
    pad = max(1.0, 0.05 * (end - first))
    return TimeRange(first - pad, end + pad, now, shows_now)


def unix_ms(mjd: float) -> float:
    """Milliseconds since 1970-01-01T00:00Z (Bokeh's datetime axis) of an MJD."""
    return (mjd - MJD_UNIX) * DAY_MS
