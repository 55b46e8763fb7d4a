"""An alert's light curve: its follow-up points as rows, and the plot of them (matplotlib, Agg).

The rows are the public light-curve format (`calib.schema.LIGHTCURVE_COLUMNS`): `mjd, mag, magerr,
caliberr, filter, survey, observatory, followup_id`, with `magerr = -1` for upper limits (then
`mag` is the limit) and `caliberr` the zero-point uncertainty of the calibration.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from itertools import cycle

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sqlalchemy import select
from sqlalchemy.orm import Session

from calib.schema import followup_result, lightcurve_row
from db.models import Followup, Observatory

#: Conventional colours of common photometric bands; others get the next colour of the cycle.
FILTER_COLOURS = {
    "U": "#7b3fb5",
    "u": "#7b3fb5",
    "B": "#1f4fd1",
    "g": "#2a9d3c",
    "V": "#3cae3c",
    "G": "#222222",
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
#: Markers per observatory ("v" is left out: a downward triangle reads as an upper limit).
MARKERS = ("o", "s", "^", "D", "P", "X", "*", "<", ">", "h")
LIMIT_ARROW_MAG = 0.3


def lightcurve_rows(s: Session, alert_id: int) -> list[dict]:
    """The alert's follow-up points in time order (`calib.schema.lightcurve_row`, plus job_id)."""
    q = (
        select(Followup, Observatory.name)
        .join(Observatory, Observatory.id == Followup.observatory_id)
        .where(Followup.alert_id == alert_id)
        .order_by(Followup.mjd, Followup.id)
    )
    return [row_of(f, obs_name) for f, obs_name in s.execute(q)]


def row_of(f: Followup, observatory: str) -> dict:
    return lightcurve_row(
        followup_result(f), mjd=f.mjd, observatory=observatory, followup_id=f.id, job_id=f.job_id
    )


def _colours(filters: Sequence[str]) -> dict[str, str]:
    spare = cycle(_SPARE_COLOURS)
    return {f: FILTER_COLOURS.get(f) or next(spare) for f in filters}


def plot_png(rows: Sequence[dict], title: str) -> bytes:
    """The light curve as a PNG: magnitude axis inverted (brighter up), a colour per filter, a
    marker per observatory, error bars, and upper limits as bars with a downward (fainter) arrow."""
    fig = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    filters = sorted({r["filter"] for r in rows})
    observatories = sorted({r["observatory"] for r in rows})
    colour = _colours(filters)
    marker = dict(zip(observatories, cycle(MARKERS), strict=False))
    for r in rows:
        c, m = colour[r["filter"]], marker[r["observatory"]]
        if r["magerr"] < 0:
            ax.plot([r["mjd"]], [r["mag"]], marker="_", markersize=14, color=c, mew=2)
            ax.plot([r["mjd"]], [r["mag"]], marker=m, markersize=6, color=c, mfc="none", ls="")
            ax.annotate(
                "",
                xy=(r["mjd"], r["mag"] + LIMIT_ARROW_MAG),
                xytext=(r["mjd"], r["mag"]),
                arrowprops={"arrowstyle": "-|>", "color": c, "lw": 1.5},
            )
        else:
            ax.errorbar(
                [r["mjd"]],
                [r["mag"]],
                yerr=[r["magerr"]],
                fmt=m,
                color=c,
                markersize=6,
                capsize=2,
                elinewidth=1,
            )
    if rows:
        mags = [r["mag"] for r in rows]
        lo = min(mags) - 0.3
        hi = max(r["mag"] + (LIMIT_ARROW_MAG if r["magerr"] < 0 else r["magerr"]) for r in rows)
        ax.set_ylim(hi + 0.2, lo)  # inverted: brighter (smaller magnitude) at the top
        mjds = [r["mjd"] for r in rows]
        pad = max(1.0, 0.05 * (max(mjds) - min(mjds)))
        ax.set_xlim(min(mjds) - pad, max(mjds) + pad)
    else:
        ax.invert_yaxis()
        ax.text(0.5, 0.5, "no follow-up data yet", transform=ax.transAxes, ha="center")
    ax.set_xlabel("MJD")
    ax.set_ylabel("magnitude")
    ax.set_title(title, parse_math=False)  # names such as "UX$^$" are text, not maths
    ax.grid(alpha=0.3)
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    handles = [Line2D([], [], color=colour[f], marker="o", ls="", label=f) for f in filters]
    handles += [
        Line2D([], [], color="#555555", marker=marker[o], ls="", label=o) for o in observatories
    ]
    if any(r["magerr"] < 0 for r in rows):
        handles.append(
            Line2D(
                [], [], color="#555555", marker="$\\downarrow$", ls="", ms=10, label="upper limit"
            )
        )
    if handles:
        legend = ax.legend(handles=handles, fontsize="small", loc="best", framealpha=0.8)
        for text in legend.get_texts():
            text.set_parse_math(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
