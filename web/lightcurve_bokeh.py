"""The interactive light curve: a Bokeh figure as a `json_item`, which /static/lightcurve.js
embeds with the BokehJS that calserv serves from the bokeh wheel (no CDN, no inline script).

A colour per filter and a marker per observatory, each with its own legend (click an entry to
hide or show those points); upper limits are drawn as downward (fainter) arrows and have a legend
entry of their own; the magnitude axis is inverted and names the band systems. Hovering a point
shows its UTC date, MJD, magnitude ± error, filter, survey, observatory and job; tapping it opens
the job's page (an OpenURL callback: no JavaScript is compiled at run time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import cycle

from bokeh.embed import json_item
from bokeh.models import (
    ColumnDataSource,
    HoverTool,
    Legend,
    LegendItem,
    OpenURL,
    Range1d,
    Scatter,
    TapTool,
)
from bokeh.plotting import figure

from web.lightcurve import LIMIT_ARROW_MAG, _colours, limit_position, mag_range, magnitude_label

#: Bokeh markers per observatory (no inverted triangle: that is the head of a limit's arrow).
MARKERS = ("circle", "square", "triangle", "diamond", "hex", "star", "plus", "square_pin")
NEUTRAL = "#000000"
TOOLTIPS = [
    ("UTC", "@date_obs"),
    ("MJD", "@mjd{0.00000}"),
    ("mag", "@mag_text"),
    ("filter", "@filter (@survey)"),
    ("observatory", "@observatory"),
    ("job", "@job_id (tap to open)"),
]


def _source(rows: Sequence[dict], faint: float) -> ColumnDataSource:
    limit = [r["magerr"] < 0 for r in rows]
    y = [
        limit_position(r["mag"], faint) if lim else r["mag"]
        for r, lim in zip(rows, limit, strict=True)
    ]
    return ColumnDataSource(
        {
            "mjd": [r["mjd"] for r in rows],
            "y": y,
            "tip": [v + LIMIT_ARROW_MAG for v in y],
            "lower": [r["mag"] - max(r["magerr"], 0) for r in rows],
            "upper": [r["mag"] + max(r["magerr"], 0) for r in rows],
            "date_obs": [r["date_obs"] for r in rows],
            "mag_text": [
                f"> {r['mag']:.3f} (upper limit)" if lim else f"{r['mag']:.3f} ± {r['magerr']:.3f}"
                for r, lim in zip(rows, limit, strict=True)
            ],
            "filter": [r["filter"] for r in rows],
            "survey": [r["survey"] for r in rows],
            "observatory": [r["observatory"] for r in rows],
            "job_id": [r["job_id"][:8] for r in rows],
            "job_url": [r["job_url"] for r in rows],
        }
    )


def bokeh_item(rows: Sequence[dict], title: str) -> dict:
    """The light curve of `rows` (light-curve rows with `job_url`) as a Bokeh `json_item`."""
    filters = sorted({r["filter"] for r in rows})
    observatories = sorted({r["observatory"] for r in rows})
    colour = _colours(filters)
    marker = dict(zip(observatories, cycle(MARKERS), strict=False))
    bright, faint = mag_range(rows) if rows else (10.0, 20.0)
    fig = figure(
        title=title,
        sizing_mode="stretch_width",
        height=440,
        tools="pan,wheel_zoom,box_zoom,reset,save",
        active_scroll="wheel_zoom",
        x_axis_label="MJD",
        y_axis_label=magnitude_label(filters),
        y_range=Range1d(faint, bright),  # inverted: brighter (smaller magnitude) at the top
    )
    fig.xaxis.formatter.use_scientific = False
    limits = []
    by_filter: dict[str, list] = {f: [] for f in filters}
    by_site: dict[str, list] = {o: [] for o in observatories}
    for f in filters:
        for o in observatories:
            for is_limit in (False, True):
                group = [
                    r
                    for r in rows
                    if r["filter"] == f and r["observatory"] == o and (r["magerr"] < 0) == is_limit
                ]
                if not group:
                    continue
                src = _source(group, faint)
                style = {"color": colour[f], "marker": marker[o], "size": 9}
                if is_limit:
                    drawn = [
                        fig.segment(
                            "mjd", "y", "mjd", "tip", source=src, color=colour[f], line_width=2
                        ),
                        fig.scatter(
                            "mjd",
                            "tip",
                            source=src,
                            marker="inverted_triangle",
                            size=8,
                            color=colour[f],
                        ),
                        fig.scatter("mjd", "y", source=src, fill_alpha=0, line_width=2, **style),
                    ]
                    limits += drawn
                else:  # error bars as renderers (not annotations), so legends hide them too
                    drawn = [
                        fig.segment("mjd", "lower", "mjd", "upper", source=src, color=colour[f]),
                        fig.scatter("mjd", "y", source=src, **style),
                    ]
                by_filter[f] += drawn
                by_site[o] += drawn
    markers = [r for r in fig.renderers if isinstance(r.glyph, Scatter)]
    hover = HoverTool(renderers=markers, tooltips=TOOLTIPS)
    tap = TapTool(renderers=hover.renderers, callback=OpenURL(url="@job_url", same_tab=True))
    fig.add_tools(hover, tap)
    _legend(
        fig,
        "filter",
        [(f, by_filter[f], {"color": colour[f], "marker": "circle"}) for f in filters],
    )
    site_items = [
        (o, by_site[o], {"line_color": NEUTRAL, "fill_color": "#ffffff", "marker": marker[o]})
        for o in observatories
    ]
    if limits:
        site_items.append(
            ("upper limits", limits, {"color": NEUTRAL, "marker": "inverted_triangle"})
        )
    _legend(fig, "observatory", site_items)
    return json_item(fig)


def _legend(fig, title: str, entries: list[tuple[str, list, dict]]) -> None:
    """A legend of its own, below the plot. A legend entry draws all its renderers on top of
    each other, so each ends with an opaque sample glyph (a renderer of one NaN point) that covers
    the others: colour alone in the filter legend, shape alone in the observatory legend."""
    items = []
    for label, renderers, look in entries:
        sample = fig.scatter(x=[math.nan], y=[math.nan], size=9, **look)  # never on the plot
        items.append(LegendItem(label=label, renderers=[*renderers, sample]))
    if items:
        legend = Legend(items=items, title=title, click_policy="hide", orientation="horizontal")
        fig.add_layout(legend, "below")
