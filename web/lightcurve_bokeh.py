"""The interactive light curve: a Bokeh figure as a `json_item`, which /static/lightcurve.js
embeds with the BokehJS that calserv serves from the bokeh wheel (no CDN, no inline script).

UTC dates below and MJD above (the script keeps the MJD axis in step while panning), a colour per
filter and a marker per observatory, upper limits as a bar at the limit with an arrow pointing
fainter, outliers hollow (an unfilled marker of their filter's colour), a ring around points with
target flags or warnings, a dashed "now" line, the magnitude axis inverted and naming the band
systems. The legend is the page's own HTML (`web.lightcurve_style.legend_of`): its buttons show
and hide renderers by their `tags`. Hovering a point shows its UTC date, MJD, magnitude ± error,
filter, survey, observatory, whether it is an outlier, flags and job; tapping selects it, and the
script shows its details with a link to the job (no JavaScript is compiled at run time, so no
CustomJS).
"""

from __future__ import annotations

from collections.abc import Sequence

from bokeh.embed import json_item
from bokeh.models import (
    ColumnDataSource,
    DatetimeTickFormatter,
    HoverTool,
    Label,
    LinearAxis,
    NoOverlap,
    Range1d,
    Span,
    TapTool,
)
from bokeh.plotting import figure

from web.lightcurve_style import (
    FLAG_COLOUR,
    arrow_length,
    is_flagged,
    is_limit,
    is_outlier,
    legend_of,
    mag_range,
    magnitude_label,
    time_range,
    unix_ms,
)

TOOLTIPS = [
    ("UTC", "@date_obs"),
    ("MJD", "@mjd{0.00000}"),
    ("mag", "@mag_text"),
    ("filter", "@filter (@survey)"),
    ("observatory", "@observatory"),
    ("check", "@check_text"),
    ("flags", "@flags_text"),
    ("job", "@job_id"),
]


def _check_text(row: dict) -> str:
    """What the comparison with other observatories' same-night points says about a point."""
    if is_limit(row):
        return "upper limit (not compared)"
    if is_outlier(row):
        return "outlier: disagrees with same-night points of other observatories"
    return "not an outlier"


def _source(rows: Sequence[dict], arrow: float) -> ColumnDataSource:
    return ColumnDataSource(
        {
            "t": [unix_ms(r["mjd"]) for r in rows],
            "mjd": [r["mjd"] for r in rows],
            "y": [r["mag"] for r in rows],
            "tip": [r["mag"] + arrow for r in rows],
            "lower": [r["mag"] - max(r["magerr"], 0) for r in rows],
            "upper": [r["mag"] + max(r["magerr"], 0) for r in rows],
            "date_obs": [r["date_obs"] for r in rows],
            "mag_text": [
                f"> {r['mag']:.3f} (upper limit)"
                if is_limit(r)
                else f"{r['mag']:.3f} ± {r['magerr']:.3f}"
                for r in rows
            ],
            "filter": [r["filter"] for r in rows],
            "survey": [r["survey"] for r in rows],
            "observatory": [r["observatory"] for r in rows],
            "check_text": [_check_text(r) for r in rows],
            "flags_text": [
                "; ".join([*(r.get("target_flags") or []), *(r.get("warnings") or [])]) or "none"
                for r in rows
            ],
            "job_id": [r["job_id"][:8] for r in rows],
            "job_url": [r["job_url"] for r in rows],
        }
    )


def bokeh_item(rows: Sequence[dict], title: str, now_mjd: float | None = None) -> dict:
    """The light curve of `rows` (light-curve rows with `job_url`) as a Bokeh `json_item`."""
    legend = legend_of(rows)
    bright, faint = mag_range(rows)
    t = time_range(rows, now_mjd)
    arrow = arrow_length(rows)
    fig = figure(
        title=title,
        sizing_mode="stretch_width",
        height=420,
        min_border_left=10,
        min_border_right=10,
        tools="pan,wheel_zoom,box_zoom,reset,save",
        toolbar_location="above",  # the plot keeps the page's whole width on a phone
        active_drag="pan",
        active_scroll=None,  # the wheel scrolls the page until the zoom tool is chosen
        x_axis_type="datetime",
        x_axis_label="UTC",
        y_axis_label=magnitude_label(list(legend.filters)),
        x_range=Range1d(unix_ms(t.start), unix_ms(t.end)),
        y_range=Range1d(faint, bright),  # inverted: brighter (smaller magnitude) at the top
    )
    fig.xaxis.formatter = DatetimeTickFormatter(
        hours="%m-%d %H:%M", days="%Y-%m-%d", months="%Y-%m", years="%Y"
    )
    fig.extra_x_ranges = {"mjd": Range1d(t.start, t.end, name="mjd_range")}
    mjd_axis = LinearAxis(x_range_name="mjd", axis_label="MJD")
    mjd_axis.formatter.use_scientific = False
    fig.add_layout(mjd_axis, "above")
    for axis in (*fig.xaxis, *fig.yaxis):
        axis.major_label_policy = NoOverlap()  # thinned on a narrow screen, never run together
    fig.add_layout(
        Span(
            location=unix_ms(t.now),
            dimension="height",
            line_dash="dashed",
            line_color="#555555",
            name="now",
            visible=t.shows_now,
        )
    )
    fig.add_layout(
        Label(
            x=unix_ms(t.now),
            y=4,
            y_units="screen",
            x_offset=-3,
            anchor="bottom_right",  # left of the line: never cut off at the plot's right edge
            text="now",
            name="now_label",
            text_font_size="11px",
            text_color="#555555",
            visible=t.shows_now,
        )
    )
    markers = []
    groups: dict[tuple[str, str, bool, bool], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["filter"], r["observatory"], is_limit(r), is_outlier(r)), []).append(r)
    for (f, o, limit, outlier), group in sorted(groups.items()):
        src = _source(group, arrow)
        c = legend.filters[f]
        if limit:  # bar at the limit, arrow down to fainter magnitudes
            drawn = [
                fig.segment("t", "y", "t", "tip", source=src, color=c, line_width=2),
                fig.scatter("t", "tip", source=src, marker="inverted_triangle", size=9, color=c),
                fig.scatter("t", "y", source=src, marker="dash", size=14, line_width=3, color=c),
            ]
        else:  # error bars as renderers (not annotations), so the legend hides them too
            marker = legend.observatories[o].bokeh
            fill = {"fill_color": None, "line_width": 1.8} if outlier else {}
            drawn = [
                fig.segment("t", "lower", "t", "upper", source=src, color=c),
                fig.scatter("t", "y", source=src, marker=marker, size=9, color=c, **fill),
            ]
        markers.append(drawn[-1])
        tag = {"filter": f, "observatory": o, "limit": limit, "outlier": outlier}
        flagged = [r for r in group if is_flagged(r)]
        if flagged:
            ring = fig.scatter("t", "y", source=_source(flagged, arrow), marker="circle", size=18,
                               fill_alpha=0, line_color=FLAG_COLOUR, line_width=1.5)  # fmt: skip
            ring.tags = [{**tag, "flagged": True}]
        for renderer in drawn:  # the page's legend shows and hides renderers by these
            renderer.tags = [tag]
    hover = HoverTool(renderers=markers, tooltips=TOOLTIPS)
    fig.add_tools(hover, TapTool(renderers=markers))
    return json_item(fig)
