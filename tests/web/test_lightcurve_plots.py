"""The light-curve plots looked at from inside (figure objects, not pixels): upper limits are
drawn at their value with the arrow marker the legend shows, inside the plotted range, in the PNG
and the Bokeh plot alike; outliers are hollow markers of their filter's colour with a legend entry
to match, limits never; the PNG's legends sit beside the axes, never over a point."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.path import Path

from tests.web.conftest import make_alert, make_observatory, make_point
from web import lightcurve_png
from web.lightcurve_bokeh import bokeh_item
from web.lightcurve_style import FILTER_COLOURS, FLAG_COLOUR, arrow_length, mag_range, time_range

ROWS = [
    {"mjd": 61000.0, "mag": 15.0, "magerr": 0.1, "filter": "V", "observatory": "A"},
    {"mjd": 61001.0, "mag": 16.0, "magerr": 0.1, "filter": "R", "observatory": "B"},
    {"mjd": 61002.0, "mag": 18.7, "magerr": -1.0, "filter": "R", "observatory": "A"},
    {"mjd": 61003.0, "mag": 15.2, "magerr": 0.05, "filter": "V", "observatory": "B",
     "target_flags": ["saturated"], "warnings": []},
    {"mjd": 61004.0, "mag": 14.1, "magerr": 0.05, "filter": "V", "observatory": "A",
     "outlier": True},
    {"mjd": 61005.0, "mag": 19.1, "magerr": -1.0, "filter": "V", "observatory": "B",
     "outlier": True},  # a limit is never drawn as an outlier, whatever the row says
]  # fmt: skip


def _is_limit_marker(line) -> bool:
    """The bar-and-arrow symbol (in the legend, centred on its row)."""
    marker = line.get_marker()
    if not isinstance(marker, Path):
        return False
    shape = marker.vertices - marker.vertices[0]
    return np.allclose(shape, lightcurve_png.LIMIT_MARKER.vertices - (-0.5, 0))


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
    assert len(limits) == 2 and sorted(y for ln in limits for y in ln.get_ydata()) == [18.7, 19.1]
    assert bright < 18.7 + arrow_length(ROWS) < faint  # the whole arrow is in view
    titles = {lg.get_title().get_text(): lg for lg in fig.legends}
    assert sorted(titles) == ["filter", "observatory", "points"]
    assert [t.get_text() for t in titles["observatory"].get_texts()] == ["A", "B"]
    labels = [t.get_text() for t in titles["points"].get_texts()]
    assert labels == ["outlier", "upper limit", "flags/warnings"]
    handle = titles["points"].legend_handles[1]
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


def _hollow(line) -> bool:
    return str(line.get_markerfacecolor()) == "none"


def test_png_outliers_are_hollow_in_their_filter_colour_with_a_matching_legend_entry(png_figure):
    fig = png_figure(ROWS)
    ax = fig.axes[0]
    points = [
        ln
        for ln in ax.get_lines()
        if ln.get_marker() in ("o", "s")  # A: o, B: s
        and ln.get_markeredgecolor() != FLAG_COLOUR
    ]  # not the ring around flagged points
    hollow = [ln for ln in points if _hollow(ln)]
    assert [list(ln.get_ydata()) for ln in hollow] == [[14.1]]  # the outlier alone, not the limit
    assert hollow[0].get_markeredgecolor() == FILTER_COLOURS["V"] and hollow[0].get_marker() == "o"
    filled = [ln for ln in points if not _hollow(ln)]
    assert sorted(y for ln in filled for y in ln.get_ydata()) == [15.0, 15.2, 16.0]
    handles = {t.get_text(): h for lg in fig.legends
               for t, h in zip(lg.get_texts(), lg.legend_handles, strict=True)}  # fmt: skip
    assert _hollow(handles["outlier"])  # the entry looks like the points it names
    assert not _hollow(handles["A"]) and not _hollow(handles["B"])  # hollow means outlier only
    plain = png_figure([r for r in ROWS if not r.get("outlier")])
    labels = [t.get_text() for lg in plain.legends for t in lg.get_texts()]
    assert "outlier" not in labels


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
    rows = _rows_for_bokeh(ROWS[:4])  # one upper limit
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


def _renderers(item: dict) -> list[dict]:
    return [m for m in _models(item) if m["name"] == "GlyphRenderer"]


def _rows_for_bokeh(rows):
    return [{**r, "date_obs": "x", "survey": "S", "job_id": "j" * 32, "job_url": "/jobs/j"}
            for r in rows]  # fmt: skip


def _source_of(item: dict, renderer: dict) -> str:
    """A renderer's data, as text (a source shared with an earlier renderer is a reference)."""
    ref = renderer["attributes"]["data_source"]["id"]
    return str(next(m for m in _models(item) if m.get("id") == ref and "attributes" in m))


def _glyph(renderer: dict) -> dict:
    return renderer["attributes"]["glyph"]["attributes"]


def _scatters(item: dict) -> list[dict]:
    return [r for r in _renderers(item) if r["attributes"]["glyph"]["name"] == "Scatter"]


def _glyph_fill(renderer: dict):
    return _glyph(renderer).get("fill_color", {}).get("value", "")


def test_bokeh_outliers_are_hollow_tagged_and_say_so_on_hover_and_tap():
    item = bokeh_item(_rows_for_bokeh(ROWS), "test", now_mjd=61006.0)
    scatters = _scatters(item)
    rings = [r for r in scatters if _glyph(r)["line_color"]["value"] == FLAG_COLOUR]
    hollow = [r for r in scatters if _glyph_fill(r) is None and r not in rings]
    assert len(hollow) == 1  # the outlier, not the flag ring, not the limit
    (outlier,) = hollow
    assert _glyph(outlier)["line_color"]["value"] == FILTER_COLOURS["V"]
    tags = dict(outlier["attributes"]["tags"][0]["entries"])  # the page's legend hides by these
    assert tags == {"filter": "V", "observatory": "A", "limit": False, "outlier": True}
    data = _source_of(item, outlier)
    assert "14.1" in data and "outlier: disagrees" in data
    said = [r for r in scatters if "outlier: disagrees" in _source_of(item, r)]
    assert said == [outlier]  # the limit flagged in its row is still a limit
    limits = [_source_of(item, r) for r in scatters if "(upper limit)" in _source_of(item, r)]
    assert any("19.1" in d and "upper limit (not compared)" in d for d in limits)
    hover = next(m for m in _models(item) if m["name"] == "HoverTool")
    assert "@check_text" in str(hover["attributes"]["tooltips"])


@pytest.fixture(scope="module")
def curve_with_outlier(app):
    """Three observatories on the same nights, one point far off: the served plots must draw it
    hollow (the routes judge the rows, the tests above the drawing)."""
    with app.app_context():
        sites = [make_observatory()[0] for _ in range(3)]
        alert = make_alert()
        for night in range(8):
            for k, site in enumerate(sites):
                bad = night == 4 and k == 2
                mag = 15.0 + 0.05 * night + 0.002 * k + (0.9 if bad else 0.0)
                make_point(alert, site, 60200.0 + night + 0.01 * k, mag, mag_err=0.01, filt="R")
        make_point(alert, sites[0], 60210.0, 19.0, limit=True, filt="R")
    return alert


def test_served_plots_draw_the_judged_outlier_hollow(client, curve_with_outlier):
    key = curve_with_outlier
    item = client.get(f"/alerts/{key}/lightcurve.bokeh.json").get_json()
    said = [r for r in _scatters(item) if "outlier: disagrees" in _source_of(item, r)]
    hollow = [r for r in said if _glyph_fill(r) is None]
    assert hollow == said and len(said) == 1 and "16.104 ±" in _source_of(item, said[0])
    assert client.get(f"/alerts/{key}/lightcurve.png").content_type == "image/png"
    html = client.get(f"/alerts/{key}", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert 'data-kind="outlier"' in html


flagged_rows = st.lists(
    st.fixed_dictionaries(
        {
            "mjd": st.floats(60000, 60010),
            "mag": st.floats(10, 20),
            "magerr": st.one_of(st.just(-1.0), st.floats(0, 0.5)),
            "filter": st.sampled_from(["V", "R", "g"]),
            "observatory": st.sampled_from(["A", "B", "C"]),
            "outlier": st.booleans(),
        }
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=25, deadline=None)  # a figure each: ~0.2 s
@given(flagged_rows)
def test_bokeh_draws_hollow_exactly_the_detections_judged_outliers(rows):
    item = bokeh_item(_rows_for_bokeh(rows), "test", now_mjd=60005.0)
    models = _models(item)
    sources = {m["id"]: str(m) for m in models if m["name"] == "ColumnDataSource"}
    hollow = 0
    for r in (m for m in models if m["name"] == "GlyphRenderer"):
        glyph = r["attributes"]["glyph"]
        line = glyph["attributes"].get("line_color", {}).get("value")
        fill = glyph["attributes"].get("fill_color", {}).get("value", "")
        if glyph["name"] == "Scatter" and fill is None and line != FLAG_COLOUR:
            data = sources[r["attributes"]["data_source"]["id"]]
            hollow += data.count("outlier: disagrees")
            assert "(upper limit)" not in data
    assert hollow == sum(1 for r in rows if r["outlier"] and r["magerr"] >= 0)
