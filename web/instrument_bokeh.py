"""An observatory's history as interactive plots: zero point, depth, FWHM and colour term of
each frame against time, one panel each over a shared MJD axis, a colour per filter. Frames the
checks flagged are drawn hollow; hovering a frame names its alert, values and flags, tapping it
opens its job."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import cycle

from bokeh.embed import json_item
from bokeh.layouts import gridplot
from bokeh.models import ColumnDataSource, HoverTool, OpenURL, TapTool
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from web.lightcurve_style import FILTER_COLOURS

#: (frame key, axis title, error key, inverted axis: brighter up)
PANELS = (
    ("zeropoint", "zero point (mag)", "zeropoint_err", False),
    ("depth", "depth, 5σ (mag)", None, True),
    ("fwhm", "FWHM (arcsec)", None, False),
    ("colour_term", "colour term", "colour_term_err", False),
)
TOOLTIPS = [
    ("UTC", "@date_obs"),
    ("alert", "@alert"),
    ("filter", "@filter (@survey)"),
    ("value", "@value{0.000}"),
    ("flags", "@flag_text"),
    ("job", "@job_id (tap to open)"),
]


def _source(frames: Sequence[dict], key: str, err_key: str | None) -> ColumnDataSource:
    shown = [f for f in frames if f[key] is not None]
    err = [(f[err_key] or 0.0) if err_key else 0.0 for f in shown]
    return ColumnDataSource(
        {
            "mjd": [f["mjd"] for f in shown],
            "value": [f[key] for f in shown],
            "lower": [f[key] - e for f, e in zip(shown, err, strict=True)],
            "upper": [f[key] + e for f, e in zip(shown, err, strict=True)],
            "date_obs": [f["date_obs"] for f in shown],
            "alert": [f["alert"] for f in shown],
            "filter": [f["filter"] for f in shown],
            "survey": [f["survey"] for f in shown],
            "flag_text": [", ".join(f["flags"]) or "none" for f in shown],
            "job_id": [f["job_id"][:8] for f in shown],
            "job_url": [f["job_url"] for f in shown],
        }
    )


def history_item(frames: Sequence[dict], title: str) -> dict:
    """The four panels of `frames` (observatory frames with `job_url`) as a Bokeh `json_item`."""
    filters = sorted({f["filter"] for f in frames})
    spare = cycle(Category10_10)  # bands without a conventional colour
    colour = {band: FILTER_COLOURS.get(band) or next(spare) for band in filters}
    plots = []
    for key, label, err_key, inverted in PANELS:
        fig = figure(
            title=f"{title}: {label}" if not plots else None,
            sizing_mode="stretch_width",
            height=200,
            tools="pan,wheel_zoom,box_zoom,reset,save",
            active_scroll="wheel_zoom",
            y_axis_label=label,
            **({"x_range": plots[0].x_range} if plots else {}),  # one MJD axis for all
        )
        fig.xaxis.formatter.use_scientific = False
        if inverted:
            fig.y_range.flipped = True
        markers = []
        for band in filters:
            for flagged in (False, True):
                group = [f for f in frames if f["filter"] == band and bool(f["flags"]) == flagged]
                if not group:
                    continue
                src = _source(group, key, err_key)
                if err_key:
                    fig.segment("mjd", "lower", "mjd", "upper", source=src, color=colour[band])
                markers.append(
                    fig.scatter(
                        "mjd",
                        "value",
                        source=src,
                        size=7,
                        color=colour[band],
                        fill_alpha=0.0 if flagged else 1.0,
                        legend_label=f"{band}{' (flagged)' if flagged else ''}",
                    )
                )
        if markers:
            hover = HoverTool(renderers=markers, tooltips=TOOLTIPS)
            tap = TapTool(renderers=markers, callback=OpenURL(url="@job_url", same_tab=True))
            fig.add_tools(hover, tap)
            fig.legend.click_policy = "hide"
            fig.legend.location = "top_left"
            fig.legend.label_text_font_size = "8pt"
        plots.append(fig)
    plots[-1].xaxis.axis_label = "MJD"
    return json_item(gridplot([[p] for p in plots], sizing_mode="stretch_width", merge_tools=True))
