"""Browsing alerts and their light curves (rows made directly, as a worker leaves them)."""

from __future__ import annotations

import csv
import io
import re

import pytest


@pytest.fixture()
def observed(make) -> dict:
    """An alert with three points from two observatories (one an upper limit), and a bare one."""
    tag = make.token()
    obs_a, _ = make.observatory(f"Alpha {tag}")
    obs_b, _ = make.observatory(f"Beta {tag}")
    name = make.alert(f"Gaia{tag}a", alert_mag=15.5, classification="SN Ia")
    bare = make.alert(f"Gaia{tag}b")
    ids = [
        make.point(name, obs_a, 60001.5, 15.2, 0.04, filt="V", survey="APASS", zeropoint_err=0.02),
        make.point(name, obs_b, 60003.25, 15.9, 0.06, filt="R", survey="APASS", plot=True),
        make.point(name, obs_a, 60002.0, 18.4, limit=True, filt="G", survey="GaiaDR3"),
    ]
    return {"tag": tag, "name": name, "bare": bare, "obs": (obs_a, obs_b), "ids": ids}


def test_alert_list_counts_points_and_last_mjd(client, observed):
    data = client.get(f"/alerts?q={observed['tag']}&format=json").get_json()
    assert set(data) == {"items", "page", "per_page", "total"}
    assert data["total"] == 2 and data["page"] == 1
    first, second = data["items"]
    assert first["name"] == observed["name"]  # most recently observed first
    assert first["npoints"] == 3 and first["last_mjd"] == pytest.approx(60003.25)
    assert first["classification"] == "SN Ia" and first["alert_mag"] == 15.5
    assert second["name"] == observed["bare"] and second["npoints"] == 0
    assert second["last_mjd"] is None


def test_observed_only_and_search_by_ivorn(client, observed):
    data = client.get(f"/alerts?q={observed['tag']}&observed_only=1&format=json").get_json()
    assert [a["name"] for a in data["items"]] == [observed["name"]]
    data = client.get(f"/alerts?q=ivo://test/{observed['bare']}&format=json").get_json()
    assert [a["name"] for a in data["items"]] == [observed["bare"]]
    # LIKE wildcards in the query are taken literally
    assert client.get("/alerts?q=%25_%25&format=json").get_json()["total"] == 0


def test_alert_list_pages(client, make):
    tag = make.token()
    for i in range(5):
        make.alert(f"Page{tag}{i}")
    seen = []
    for page in (1, 2, 3):
        data = client.get(f"/alerts?q=Page{tag}&per_page=2&page={page}&format=json").get_json()
        assert data["total"] == 5 and data["per_page"] == 2
        seen += [a["name"] for a in data["items"]]
    assert sorted(seen) == [f"Page{tag}{i}" for i in range(5)]
    html = client.get(f"/alerts?q=Page{tag}&per_page=2&page=2").get_data(as_text=True)
    assert "page 2 of 3" in html and 'rel="next"' in html and 'rel="prev"' in html


def test_alert_list_html_links_to_alert_pages(client, observed):
    html = client.get(f"/alerts?q={observed['tag']}").get_data(as_text=True)
    assert f'href="/alerts/{observed["name"]}"' in html and "SN Ia" in html


def test_bad_paging_is_a_json_error(client):
    for query in ("page=0", "per_page=501", "per_page=abc"):
        resp = client.get(f"/alerts?{query}&format=json")
        assert resp.status_code == 422, query
        assert set(resp.get_json()) == {"error", "detail"}


def test_alert_page_shows_the_plot_and_points(client, observed):
    resp = client.get(f"/alerts/{observed['name']}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert f"/alerts/{observed['name']}/lightcurve.png" in html
    assert html.count('href="/jobs/') == 3 and observed["obs"][1] in html
    assert re.search(r'data-label="magnitude">&gt; [\d.]+ <span class="muted small">limit', html)


def test_alert_page_by_json(client, observed):
    data = client.get(f"/alerts/{observed['name']}?format=json").get_json()
    assert data["name"] == observed["name"] and data["npoints"] == 3
    assert [p["mjd"] for p in data["lightcurve"]] == [60001.5, 60002.0, 60003.25]


def test_unknown_alert_is_404_in_both_formats(client):
    assert client.get("/alerts/NoSuchAlert").status_code == 404
    resp = client.get("/alerts/NoSuchAlert/lightcurve?format=json")
    assert resp.status_code == 404 and "unknown alert" in resp.get_json()["error"]


def test_lightcurve_json(client, observed):
    data = client.get(f"/alerts/{observed['name']}/lightcurve?format=json").get_json()
    public = [
        "mjd",
        "date_obs",
        "mag",
        "magerr",
        "caliberr",
        "filter",
        "survey",
        "observatory",
        "followup_id",
    ]
    cols = [*public, "limit", "zeropoint_order", "target_flags", "warnings", "outlier"]
    assert data["columns"] == cols
    assert [sorted(p) for p in data["items"]] == [sorted(cols)] * 3
    v, g, r = data["items"]
    assert v == {
        "mjd": 60001.5,
        "date_obs": "2023-02-26T12:00:00.000Z",
        "mag": 15.2,
        "magerr": 0.04,
        "caliberr": 0.02,
        "filter": "V",
        "survey": "APASS",
        "observatory": observed["obs"][0],
        "followup_id": observed["ids"][0],
        "limit": False,
        "zeropoint_order": 0,  # rows made before calib reports these get the defaults
        "target_flags": [],
        "warnings": [],
        "outlier": False,
    }
    assert g["magerr"] == -1 and g["mag"] == 18.4 and g["survey"] == "GaiaDR3" and g["limit"]
    assert r["observatory"] == observed["obs"][1]


def test_lightcurve_csv(client, observed):
    resp = client.get(f"/alerts/{observed['name']}/lightcurve?format=csv")
    assert resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert list(rows[0]) == [
        "mjd",
        "date_obs",
        "mag",
        "magerr",
        "caliberr",
        "filter",
        "survey",
        "observatory",
        "followup_id",
        "limit",
    ]
    assert [r["magerr"] for r in rows] == ["0.04", "-1.0", "0.06"]
    assert [r["limit"] for r in rows] == ["False", "True", "False"]


def test_lightcurve_png(client, observed, make):
    resp = client.get(f"/alerts/{observed['name']}/lightcurve.png")
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    assert resp.data.startswith(b"\x89PNG")
    again = client.get(
        f"/alerts/{observed['name']}/lightcurve.png",
        headers={"If-None-Match": resp.headers["ETag"]},
    )
    assert again.status_code == 304
    empty = client.get(f"/alerts/{observed['bare']}/lightcurve.png")
    assert empty.status_code == 200 and empty.data.startswith(b"\x89PNG")
