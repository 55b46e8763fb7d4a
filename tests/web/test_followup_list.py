"""`/followup`: the list of follow-up observations, paged and filtered, as HTML, JSON and CSV."""

from __future__ import annotations

import csv
import io

import pytest


@pytest.fixture()
def data(make) -> dict:
    tag = make.token()
    obs_a, _ = make.observatory(f"FA {tag}")
    obs_b, _ = make.observatory(f"FB {tag}")
    alert = make.alert(f"Fu{tag}")
    other = make.alert(f"Fo{tag}")
    for i in range(7):
        make.point(alert, obs_a if i % 2 else obs_b, 59000.0 + i, 14.0 + i / 10, plot=i == 0)
    make.point(other, obs_a, 59010.0, 17.0, limit=True)
    return {"alert": alert, "other": other, "obs": (obs_a, obs_b)}


def test_filter_by_alert_pages_newest_first(client, data):
    first = client.get(f"/followup?alert={data['alert']}&per_page=3&format=json").get_json()
    assert set(first) == {"items", "page", "per_page", "total"}
    assert first["total"] == 7 and len(first["items"]) == 3
    assert [f["mjd"] for f in first["items"]] == [59006.0, 59005.0, 59004.0]
    last = client.get(f"/followup?alert={data['alert']}&per_page=3&page=3&format=json").get_json()
    assert [f["mjd"] for f in last["items"]] == [59000.0]
    item = last["items"][0]
    assert item["job_url"].endswith(f"/jobs/{item['job_id']}")
    assert item["plot_url"].endswith(f"/jobs/{item['job_id']}/plot.png")
    assert item["alert"] == data["alert"] and item["limit"] is False


def test_filter_by_ivorn_observatory_and_mjd(client, data):
    url = f"/followup?alert=ivo://test/{data['alert']}&observatory={data['obs'][0]}&format=json"
    got = client.get(url).get_json()
    assert got["total"] == 3 and {f["observatory"] for f in got["items"]} == {data["obs"][0]}
    got = client.get(
        f"/followup?alert={data['alert']}&mjd_min=59002&mjd_max=59004.0&format=json"
    ).get_json()
    assert sorted(f["mjd"] for f in got["items"]) == [59002.0, 59003.0, 59004.0]
    got = client.get(f"/followup?observatory={data['obs'][0].upper()}&format=json").get_json()
    assert got["total"] == 4  # three points plus the other alert's limit; case-insensitive


def test_limits_are_marked(client, data):
    item = client.get(f"/followup?alert={data['other']}&format=json").get_json()["items"][0]
    assert item["limit"] is True and item["mag_err"] == -1 and item["plot_url"] is None


def test_csv(client, data):
    resp = client.get(f"/followup?alert={data['alert']}&format=csv")
    assert resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert len(rows) == 7 and rows[0]["alert"] == data["alert"] and rows[0]["mjd"] == "59006.0"


def test_html(client, data):
    html = client.get(f"/followup?alert={data['alert']}&per_page=5").get_data(as_text=True)
    assert html.count("/jobs/") >= 5 and "page 1 of 2" in html
    assert f"/alerts/{data['alert']}" in html and ">plot</a>" not in html
    page2 = client.get(f"/followup?alert={data['alert']}&per_page=5&page=2").get_data(as_text=True)
    assert ">plot</a>" in page2


def test_bad_parameters_are_json_errors(client):
    for query in ("mjd_min=abc", "mjd_min=nan", "per_page=1000", "page=-1", "sort=x"):
        resp = client.get(f"/followup?{query}&format=json")
        assert resp.status_code == 422, query
        body = resp.get_json()
        assert body["error"] and "detail" in body


def test_an_empty_mjd_range_is_an_empty_list(client):
    resp = client.get("/followup?mjd_min=2&mjd_max=1&format=json")
    assert resp.status_code == 200 and resp.get_json()["total"] == 0


def test_per_page_up_to_500(client):
    assert client.get("/followup?per_page=500&format=json").get_json()["per_page"] == 500
