"""The light-curve plots looked at from inside (figure objects, not pixels): upper limits are
drawn at their value with the arrow marker the legend shows, inside the plotted range, in the PNG
and the Bokeh plot alike; the PNG's legends sit beside the axes, never over a point."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.path import Path

from web import lightcurve_png
from web.lightcurve_bokeh import bokeh_item
from web.lightcurve_style import arrow_length, mag_range, time_range

ROWS = [
    {"mjd": 61000.0, "mag": 15.0, "magerr": 0.1, "filter": "V", "observatory": "A"},
    {"mjd": 61001.0, "mag": 16.0, "magerr": 0.1, "filter": "R", "observatory": "B"},
    {"mjd": 61002.0, "mag": 18.7, "magerr": -1.0, "filter": "R", "observatory": "A"},
    {"mjd": 61003.0, "mag": 15.2, "magerr": 0.05, "filter": "V", "observatory": "B",
     "target_flags": ["saturated"], "warnings": []},
]  # fmt: skip


def _is_limit_marker(line) -> bool:
    marker = line.get_marker()
    return isinstance(marker, Path) and np.array_equal(
        marker.vertices, lightcurve_png.LIMIT_MARKER.vertices
    )


@pytest.fixture()
def png_figure(monkeypatch):
    captured = {}
    real = lightcurve_png.Figure

    def spy(*args, **kwargs):
        captured["fig"] = real(*args, **kwargs)
        return captured["fig"]

    monkeypatch.setattr(lightcurve_png, "Figure", spy)

    def draw(rows, now_mjd=None):
        png = lightcurve_png.plot_png(rows, "test", now_mjd=now_mjd)
        assert png.startswith(b"\x89PNG")
        fig = captured["fig"]
        FigureCanvasAgg(fig).draw()
        return fig

    return draw


def test_png_limit_sits_at_its_value_with_the_legend_marker(png_figure):
    fig = png_figure(ROWS)
    ax = fig.axes[0]
    faint, bright = ax.get_ylim()
    assert faint > bright  # brighter is up
    limits = [ln for ln in ax.get_lines() if _is_limit_marker(ln)]
    assert len(limits) == 1 and list(limits[0].get_ydata()) == [18.7]
    assert bright < 18.7 + arrow_length(ROWS) < faint  # the whole arrow is in view
    titles = {lg.get_title().get_text(): lg for lg in fig.legends}
    assert sorted(titles) == ["filter", "observatory"]
    labels = [t.get_text() for t in titles["observatory"].get_texts()]
    assert labels == ["A", "B", "upper limit", "flags/warnings"]
    handle = titles["observatory"].legend_handles[2]
    assert _is_limit_marker(handle)
    axes_box = ax.get_window_extent()
    for legend in fig.legends:  # beside the axes: no point can be under a legend
        assert not legend.get_window_extent().overlaps(axes_box)


def test_png_has_utc_dates_above_and_a_now_line(png_figure):
    fig = png_figure(ROWS, now_mjd=61010.0)
    ax = fig.axes[0]
    assert ax.get_xlim()[0] < 61000.0 and ax.get_xlim()[1] > 61010.0
    now = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(now) == 1 and now[0].get_xdata()[0] == 61010.0
    top = [c for c in ax.child_axes if c.get_xlabel() == "UTC"]
    assert top, "no UTC axis"
    far = png_figure(ROWS, now_mjd=63000.0)  # years later: no "now" line squeezing the points
    assert not [ln for ln in far.axes[0].get_lines() if ln.get_linestyle() == "--"]


rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "mjd": st.floats(50000, 70000),
            "mag": st.floats(5, 25),
            "magerr": st.one_of(st.just(-1.0), st.floats(0, 1)),
        }
    ),
    min_size=1,
    max_size=30,
)


@given(rows_strategy)
def test_every_point_and_every_whole_arrow_is_inside_the_range(rows):
    bright, faint = mag_range(rows)
    arrow = arrow_length(rows)
    for r in rows:
        if r["magerr"] < 0:
            assert bright < r["mag"] and r["mag"] + arrow < faint
        else:
            assert bright < r["mag"] - r["magerr"] and r["mag"] + r["magerr"] < faint
    t = time_range(rows, now_mjd=60000.0)
    assert all(t.start < r["mjd"] < t.end for r in rows)


def _models(item: dict) -> list[dict]:
    """Every model of a json_item, flattened."""
    out = []

    def walk(node):
        if isinstance(node, dict):
            if "type" in node and node.get("type") == "object" and "name" in node:
                out.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(item["doc"])
    return out


def test_bokeh_limit_bar_is_at_its_value_inside_the_range():
    rows = [{**r, "date_obs": "x", "survey": "S", "job_id": "j" * 32, "job_url": "/jobs/j"}
            for r in ROWS]  # fmt: skip
    item = bokeh_item(rows, "test", now_mjd=61004.0)
    models = _models(item)
    names = [m["name"] for m in models]
    assert "Legend" not in names  # the page's HTML legend replaces it
    assert "NoOverlap" in names and "DatetimeTickFormatter" in names
    sources = [m for m in models if m["name"] == "ColumnDataSource"]
    limit_sources = [m for m in sources if "(upper limit)" in str(m)]
    assert len(limit_sources) == 1
    assert "18.7" in str(limit_sources[0]) and "> 18.700 (upper limit)" in str(limit_sources[0])
    (y_range,) = [
        m for m in models if m["name"] == "Range1d"
        and m["attributes"]["start"] > m["attributes"]["end"]  # inverted: the magnitude axis
    ]  # fmt: skip
    faint, bright = y_range["attributes"]["start"], y_range["attributes"]["end"]
    assert bright < 18.7 and 18.7 + arrow_length(rows) < faint
    scatters = str([m["attributes"] for m in models if m["name"] == "Scatter"])
    assert "'dash'" in scatters and "'inverted_triangle'" in scatters
