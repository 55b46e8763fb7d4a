"""An alert's light curve: its follow-up points as rows, and the plot of them (matplotlib, Agg).

The rows are the public light-curve format (`calib.schema.LIGHTCURVE_COLUMNS`): `mjd, date_obs,
mag, magerr, caliberr, filter, survey, observatory, followup_id`, with `magerr = -1` for upper
limits (then `mag` is the limit), `caliberr` the zero-point uncertainty of the calibration and
`date_obs` the MJD in ISO 8601 UTC. Withdrawn and superseded points are not part of the light
curve (they stay in the database).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from itertools import cycle

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from calib.schema import followup_result, lightcurve_row
from db.models import Followup, Observatory
from web.dates import date_obs

#: The points that make light curves and lists: neither withdrawn nor superseded.
CURRENT = and_(Followup.withdrawn_at.is_(None), Followup.superseded_by.is_(None))

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
#: Markers per observatory ("v" is left out: a downward triangle reads as an upper limit).
MARKERS = ("o", "s", "^", "D", "P", "X", "*", "<", ">", "h")
LIMIT_ARROW_MAG = 0.3
#: How far (mag) upper limits may push the axis beyond the faintest detection.
LIMIT_REACH = 1.0


def lightcurve_rows(s: Session, alert_id: int) -> list[dict]:
    """The alert's follow-up points in time order (`calib.schema.lightcurve_row`, plus job_id)."""
    q = (
        select(Followup, Observatory.name)
        .join(Observatory, Observatory.id == Followup.observatory_id)
        .where(Followup.alert_id == alert_id, CURRENT)
        .order_by(Followup.mjd, Followup.id)
    )
    return [row_of(f, obs_name) for f, obs_name in s.execute(q)]


def row_of(f: Followup, observatory: str) -> dict:
    return lightcurve_row(
        followup_result(f),
        mjd=f.mjd,
        date_obs=date_obs(f.mjd),
        observatory=observatory,
        followup_id=f.id,
        job_id=f.job_id,
        exptime=f.exptime,
        comment=f.comment,
    )


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


def _colours(filters: Sequence[str]) -> dict[str, str]:
    spare = cycle(_SPARE_COLOURS)
    return {f: FILTER_COLOURS.get(f) or next(spare) for f in filters}


def mag_range(rows: Sequence[dict]) -> tuple[float, float]:
    """(bright, faint) ends of the magnitude axis: the detections with their errors, padded;
    upper limits widen it by at most LIMIT_REACH mag, so one deep limit cannot squeeze the
    detections (a limit beyond is drawn at the faint edge, still pointing fainter)."""
    detections = [r for r in rows if r["magerr"] >= 0]
    limits = [r["mag"] + LIMIT_ARROW_MAG for r in rows if r["magerr"] < 0]
    if not detections:
        return min(r["mag"] for r in rows) - 0.5, max(limits) + 0.3
    bright = min(r["mag"] - r["magerr"] for r in detections) - 0.3
    faint = max(r["mag"] + r["magerr"] for r in detections) + 0.3
    if limits:
        faint = max(faint, min(max(limits), faint + LIMIT_REACH)) + 0.1
    bright = min(bright, min(r["mag"] for r in rows) - 0.3)
    return bright, faint


def limit_position(mag: float, faint: float) -> float:
    """Where an upper limit is drawn: at its magnitude, or at the faint edge of the axis."""
    return min(mag, faint - LIMIT_ARROW_MAG - 0.15)


def plot_png(rows: Sequence[dict], title: str) -> bytes:
    """The light curve as a PNG: magnitude axis inverted (brighter up) and labelled with the band
    systems, a colour per filter and a marker per observatory (two legends), error bars, and
    upper limits as bars with a downward (fainter) arrow."""
    from matplotlib.figure import Figure  # loaded by the first plot, not by the app
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    filters = sorted({r["filter"] for r in rows})
    observatories = sorted({r["observatory"] for r in rows})
    colour = _colours(filters)
    marker = dict(zip(observatories, cycle(MARKERS), strict=False))
    bright, faint = mag_range(rows) if rows else (0.0, 1.0)
    groups: dict[tuple[str, str, bool], list[dict]] = {}
    for r in rows:  # one call per (filter, observatory, kind): per-point calls cost ~10 ms each
        groups.setdefault((r["filter"], r["observatory"], r["magerr"] < 0), []).append(r)
    for (f, o, is_limit), group in groups.items():
        c, m = colour[f], marker[o]
        x = [r["mjd"] for r in group]
        if is_limit:
            y = [limit_position(r["mag"], faint) for r in group]
            ax.plot(x, y, marker="_", markersize=14, color=c, mew=2, ls="")
            ax.plot(x, y, marker=m, markersize=6, color=c, mfc="none", ls="")
            ax.quiver(
                x,
                y,
                [0] * len(x),
                [LIMIT_ARROW_MAG] * len(x),
                color=c,
                angles="xy",
                scale_units="xy",
                scale=1,
                width=0.003,
            )
        else:
            y = [r["mag"] for r in group]
            err = [r["magerr"] for r in group]
            ax.errorbar(x, y, yerr=err, fmt=m, color=c, markersize=6, capsize=2, elinewidth=1)
    if rows:
        ax.set_ylim(faint, bright)  # inverted: brighter (smaller magnitude) at the top
        mjds = [r["mjd"] for r in rows]
        pad = max(1.0, 0.05 * (max(mjds) - min(mjds)))
        ax.set_xlim(min(mjds) - pad, max(mjds) + pad)
    else:
        ax.invert_yaxis()
        ax.text(0.5, 0.5, "no follow-up data yet", transform=ax.transAxes, ha="center")
    ax.set_xlabel("MJD")
    ax.set_ylabel(magnitude_label(filters), parse_math=False)
    ax.set_title(title, parse_math=False)  # names such as "UX$^$" are text, not maths
    ax.grid(alpha=0.3)
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    bands = [Line2D([], [], color=colour[f], marker="o", ls="", label=f) for f in filters]
    sites = [
        Line2D([], [], color="#000000", mfc="none", marker=marker[o], ls="", label=o)
        for o in observatories
    ]
    if any(r["magerr"] < 0 for r in rows):
        sites.append(
            Line2D(
                [], [], color="#000000", marker="$\\downarrow$", ls="", ms=10, label="upper limit"
            )
        )
    if bands:
        _legend(ax, bands, "filter", "upper left")
        ax.add_artist(ax.get_legend())
        _legend(ax, sites, "observatory", "upper right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _legend(ax, handles: list, title: str, loc: str) -> None:
    legend = ax.legend(handles=handles, title=title, fontsize="small", loc=loc, framealpha=0.8)
    for text in [*legend.get_texts(), legend.get_title()]:
        text.set_parse_math(False)  # observatory and filter names are text, not maths
