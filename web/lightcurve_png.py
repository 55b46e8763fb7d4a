"""The light curve as a PNG (matplotlib, Agg): for embedding and for readers without JavaScript.

Magnitude axis inverted (brighter up) and labelled with the band systems, MJD below and UTC dates
above, a colour per filter and a marker per observatory, error bars, upper limits as a bar at the
limit with an arrow pointing fainter, outliers hollow (unfilled, in their filter's colour), a ring
around flagged points and a dashed "now" line. The legends sit outside the axes, so they never
cover a point. Styles: `web.lightcurve_style`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib.dates as mdates
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.path import Path

from web.lightcurve_style import (
    FLAG_COLOUR,
    MJD_UNIX,
    NEUTRAL,
    is_flagged,
    is_limit,
    is_outlier,
    legend_of,
    mag_range,
    magnitude_label,
    time_range,
)

#: The upper-limit marker: a bar at the marker's origin (the limit) and an arrow below it,
#: pointing down the inverted axis (fainter). Markers keep their origin when scaled.
LIMIT_MARKER = Path(
    [(-0.5, 0), (0.5, 0), (0, 0), (0, -1.2), (-0.33, -1.05), (0, -1.6), (0.33, -1.05), (0, -1.05)],
    [
        Path.MOVETO,
        Path.LINETO,
        Path.MOVETO,
        Path.LINETO,
        Path.MOVETO,
        Path.LINETO,
        Path.LINETO,
        Path.CLOSEPOLY,
    ],
)
LIMIT_SIZE = 34
#: The same symbol centred on its origin, for the legend row (which centres its markers).
LIMIT_LEGEND_MARKER = Path(LIMIT_MARKER.vertices + np.array([0.0, 0.8]), LIMIT_MARKER.codes)


def _datenum(mjd):
    return mjd - MJD_UNIX  # matplotlib's dates count days from 1970-01-01


def _mjd(datenum):
    return datenum + MJD_UNIX


def plot_png(rows: Sequence[dict], title: str, now_mjd: float | None = None) -> bytes:
    """The light curve of `rows` (light-curve rows) as PNG bytes."""
    fig = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    legend = legend_of(rows)
    groups: dict[tuple[str, str, bool, bool], list[dict]] = {}
    for r in rows:  # one call per (filter, observatory, kind): per-point calls cost ~10 ms each
        groups.setdefault((r["filter"], r["observatory"], is_limit(r), is_outlier(r)), []).append(r)
    for (f, o, limit, outlier), group in groups.items():
        c = legend.filters[f]
        x = [r["mjd"] for r in group]
        y = [r["mag"] for r in group]
        if limit:
            ax.plot(x, y, ls="", marker=LIMIT_MARKER, ms=LIMIT_SIZE, color=c, mew=2)
        else:
            err = [r["magerr"] for r in group]
            m = legend.observatories[o].mpl
            hollow = {"mfc": "none", "mew": 1.3, "markersize": 8} if outlier else {"markersize": 6}
            ax.errorbar(x, y, yerr=err, fmt=m, color=c, capsize=2, elinewidth=1, **hollow)
    flagged = [r for r in rows if is_flagged(r)]
    if flagged:
        ax.plot(
            [r["mjd"] for r in flagged],
            [r["mag"] for r in flagged],
            ls="",
            marker="o",
            ms=14,
            mfc="none",
            mec=FLAG_COLOUR,
            mew=1.5,
        )
    bright, faint = mag_range(rows)
    ax.set_ylim(faint, bright)  # inverted: brighter (smaller magnitude) at the top
    t = time_range(rows, now_mjd)
    ax.set_xlim(t.start, t.end)
    if t.shows_now:
        ax.axvline(t.now, color="#555555", ls="--", lw=1)
        ax.annotate("now", (t.now, 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
                    textcoords="offset points", color="#555555", fontsize="small")  # fmt: skip
    if not rows:
        ax.text(0.5, 0.5, "no follow-up data yet", transform=ax.transAxes, ha="center")
    ax.set_xlabel("MJD")
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    top = ax.secondary_xaxis("top", functions=(_datenum, _mjd))
    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    top.xaxis.set_major_locator(locator)
    top.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    top.set_xlabel("UTC")
    ax.set_ylabel(magnitude_label(list(legend.filters)), parse_math=False)
    ax.set_title(title, parse_math=False)  # names such as "UX$^$" are text, not maths
    ax.grid(alpha=0.3)
    bands = [Line2D([], [], color=c, marker="o", ls="", label=f) for f, c in legend.filters.items()]
    sites = [
        Line2D([], [], color=NEUTRAL, marker=m.mpl, ls="", label=o)  # filled: hollow is outlier
        for o, m in legend.observatories.items()
    ]
    marks = []  # what a point's look says, in a row under the plot (the right side is full)
    if legend.has_outliers:
        hollow = {"marker": "o", "ms": 8, "mfc": "none", "mew": 1.3}
        marks.append(Line2D([], [], color=NEUTRAL, ls="", label="outlier", **hollow))
    if legend.has_limits:
        marks.append(
            Line2D(
                [],
                [],
                color=NEUTRAL,
                marker=LIMIT_LEGEND_MARKER,
                ms=LIMIT_SIZE * 0.3,
                mew=2,
                ls="",
                label="upper limit",
            )
        )
    if legend.has_flagged:
        marks.append(
            Line2D(
                [],
                [],
                color=FLAG_COLOUR,
                marker="o",
                ms=10,
                mfc="none",
                ls="",
                label="flags/warnings",
            )
        )
    if bands:
        _legend(fig, bands, "filter", "outside right upper")
        _legend(fig, sites, "observatory", "outside right lower")
    if marks:
        _legend(fig, marks, "points", "outside lower center", ncols=len(marks), handleheight=1.6)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _legend(fig: Figure, handles: list, title: str, loc: str, **layout) -> None:
    """A legend beside the axes (never over a point)."""
    legend = fig.legend(handles=handles, title=title, fontsize="small", loc=loc, framealpha=0.8,
                        **layout)  # fmt: skip
    for text in [*legend.get_texts(), legend.get_title()]:
        text.set_parse_math(False)  # observatory and filter names are text, not maths
