"""Lists, light curves and job status as VOTable, ECSV and FITS (read back with astropy and pyvo),
CSV booleans, and 406 for a format an endpoint does not have."""

from __future__ import annotations

import io
import warnings
from urllib.parse import quote

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.io import votable
from astropy.table import Table
from astropy.time import Time
from pyvo.dal import DALOverflowWarning, DALResults

ACCEPT = {
    "votable": "application/x-votable+xml",
    "ecsv": "text/x-ecsv",
    "fits": "application/fits",
}


def read(resp, fmt: str) -> Table:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == ACCEPT[fmt]
    body = resp.get_data()
    if fmt == "ecsv":
        return Table.read(body.decode(), format="ascii.ecsv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a spec violation astropy notices fails the test
        if fmt == "fits":  # date_obs in the FITS time convention: a Time with astropy_native
            return Table.read(io.BytesIO(body), format="fits", astropy_native=True)
        return Table.read(io.BytesIO(body), format="votable")


@pytest.fixture()
def curve(make) -> dict:
    """An alert with a non-ASCII name, two detections and a limit from two observatories."""
    tag = make.token()
    obs_a, _ = make.observatory(f"Ondřejov {tag}")
    obs_b, _ = make.observatory(f"Loiano {tag}")
    name = make.alert(f"Gaïa{tag}")
    make.point(name, obs_a, 60001.25, 15.52, 0.031, filt="V", zeropoint_err=0.012)
    make.point(name, obs_b, 60000.5, 15.11, 0.052, filt="R", survey="GaiaDR3")
    make.point(name, obs_a, 60003.75, 18.9, limit=True, filt="V")
    return {"name": name, "observatories": (obs_a, obs_b)}


def lightcurve_url(client, name: str) -> str:
    alerts = client.get(f"/alerts?q={name}&format=json").get_json()["items"]
    return alerts[0]["url_page"].split("://", 1)[1].split("/", 1)[1] + "/lightcurve"


@pytest.mark.parametrize("fmt", ["votable", "ecsv", "fits"])
@pytest.mark.parametrize("by", ["format", "accept"])
def test_lightcurve_tables_read_back_with_units_limits_times_and_the_alert(client, curve, fmt, by):
    url = "/" + lightcurve_url(client, curve["name"])
    expected = client.get(url + "?format=json").get_json()
    resp = (
        client.get(f"{url}?format={fmt}")
        if by == "format"
        else client.get(url, headers={"Accept": ACCEPT[fmt]})
    )
    t = read(resp, fmt)
    assert len(t) == 3
    assert t["mjd"].unit == u.d
    assert t["mag"].unit == u.mag and t["magerr"].unit == u.mag and t["caliberr"].unit == u.mag
    assert t["limit"].dtype == bool
    assert list(t["limit"]) == [r["limit"] for r in expected["items"]] == [False, False, True]
    np.testing.assert_allclose(t["mag"], [r["mag"] for r in expected["items"]])
    np.testing.assert_allclose(t["mjd"], [60000.5, 60001.25, 60003.75])
    assert list(t["filter"]) == ["R", "V", "V"]
    assert list(t["observatory"]) == [curve["observatories"][i] for i in (1, 0, 0)]
    assert t["target_flags"].dtype.kind in "US"  # FITS text reads as bytes, items as str
    dates = [r["date_obs"] for r in expected["items"]]
    if fmt == "votable":  # an ISO 8601 timestamp (DALI); the mjd refers to a UTC time system
        when = Time(list(t["date_obs"]), scale="utc")
        assert t["date_obs"].meta["xtype"] == "timestamp"
    else:
        when = t["date_obs"]
        assert isinstance(when, Time) and when.scale == "utc"
    np.testing.assert_allclose(when.mjd, t["mjd"], atol=1e-8)
    assert list(Time([d.rstrip("Z") for d in dates]).isot) == list(when.isot)
    if fmt == "votable":
        assert curve["name"] in t.meta["description"]
    else:
        meta = {k.lower(): v for k, v in t.meta.items()}
        if fmt == "fits":  # header cards are ASCII: the rest as \x/\u escapes; name is OBJECT
            meta = {k: v.encode().decode("unicode_escape") if isinstance(v, str) else v
                    for k, v in meta.items()}  # fmt: skip
            meta["name"] = meta["object"]
        assert meta["ivorn"] == f"ivo://test/{curve['name']}"
        assert meta["ra"] == 120.0 and meta["dec"] == 45.0
        assert meta["name"] == curve["name"]


def test_votable_params_and_pyvo(client, curve):
    """pyvo reads the VOTable as a DAL result; the alert is a set of PARAMs with units/UCDs."""
    url = "/" + lightcurve_url(client, curve["name"]) + "?format=votable"
    body = client.get(url).get_data()
    parsed = votable.parse(io.BytesIO(body), verify="exception")
    table = parsed.get_first_table()
    params = {p.name: p for p in table.params}
    assert params["ivorn"].value == f"ivo://test/{curve['name']}"
    assert params["name"].value == curve["name"]
    assert params["ra"].value == 120.0 and str(params["ra"].unit) == "deg"
    assert params["ra"].ucd == "pos.eq.ra" and params["dec"].ucd == "pos.eq.dec"
    assert table.get_field_by_id_or_name("mag").ucd == "phot.mag"
    assert table.get_field_by_id_or_name("mjd").ref == "utc_mjd"
    results = DALResults(parsed)
    assert results.status[0] == "OK"
    assert len(results) == 3 and "mag" in results.fieldnames
    assert results.fieldname_with_ucd("phot.mag") == "mag"
    rows = list(results)
    assert [bool(r["limit"]) for r in rows] == [False, False, True]
    assert results.to_table()["mag"].unit == u.mag


@pytest.mark.parametrize("fmt", ["votable", "ecsv", "fits"])
def test_alert_list_tables(client, curve, fmt):
    t = read(client.get(f"/alerts?q={curve['name']}&format={fmt}"), fmt)
    assert list(t["name"]) == [curve["name"]]
    assert t["ra"].unit == u.deg and t["dec"].unit == u.deg and t["alert_mag"].unit == u.mag
    assert t["npoints"][0] == 3 and t["last_mjd"].unit == u.d
    assert t["ivorn"][0] == f"ivo://test/{curve['name']}"


@pytest.mark.parametrize("fmt", ["votable", "ecsv", "fits"])
def test_followup_list_tables_say_when_they_are_a_page(client, curve, fmt):
    url = f"/followup?alert={curve['name']}&per_page=2&format={fmt}"
    resp = client.get(url)
    t = read(resp, fmt)
    assert len(t) == 2 and t["limit"].dtype == bool and list(t["limit"]) == [True, False]
    assert t["mag"].unit == u.mag and t["exptime"].unit == u.s and t["mjd"].unit == u.d
    if fmt == "votable":
        with pytest.warns(DALOverflowWarning):  # pyvo says the rows are a part of the list
            results = DALResults(votable.parse(io.BytesIO(resp.get_data())))
        assert results.status[0] == "OVERFLOW"
    else:
        meta = {k.lower(): v for k, v in t.meta.items()}
        assert meta["total"] == 3 and meta["page"] == 1 and meta["per_page"] == 2


def test_an_empty_list_is_an_empty_typed_table(client):
    for fmt in ("votable", "ecsv", "fits"):
        t = read(client.get(f"/followup?alert=no-such-alert-anywhere&format={fmt}"), fmt)
        assert len(t) == 0 and t["mag"].unit == u.mag and t["limit"].dtype == bool


@pytest.mark.parametrize("fmt", ["votable", "ecsv", "fits"])
def test_bulk_job_status_tables(client, make, fmt):
    tag = make.token()
    obs, _ = make.observatory(f"Bulk {tag}")
    alert = make.alert(f"Bk{tag}")
    make.point(alert, obs, 60100.5, 16.25)
    make.point(alert, obs, 60101.5, 19.5, limit=True)
    ids = [f["job_id"] for f in client.get(f"/followup?alert={alert}&format=json").json["items"]]
    resp = client.post(f"/jobs/status?format={fmt}", json={"ids": [*ids, "nosuchjob"]})
    t = read(resp, fmt)
    assert sorted(t["job_id"]) == sorted(ids)
    assert t["mag"].unit == u.mag and t["match_dist"].unit == u.arcsec and t["ra"].unit == u.deg
    assert sorted(t["limit"]) == [False, True] and t["limit"].dtype == bool
    assert set(t["status"]) == {"succeeded"}
    by_accept = client.post("/jobs/status", json={"ids": ids}, headers={"Accept": ACCEPT[fmt]})
    assert len(read(by_accept, fmt)) == 2


def test_csv_limit_columns_read_as_booleans(client, curve):
    url = "/" + lightcurve_url(client, curve["name"]) + "?format=csv"
    text = client.get(url).get_data(as_text=True)
    frame = pd.read_csv(io.StringIO(text))
    assert frame["limit"].dtype == bool and list(frame["limit"]) == [False, False, True]
    assert list(frame.columns[:9]) == [
        "mjd", "date_obs", "mag", "magerr", "caliberr", "filter", "survey", "observatory",
        "followup_id",
    ]  # fmt: skip
    t = Table.read(text, format="ascii.csv", converters={"limit": bool})
    assert t["limit"].dtype == bool and list(t["limit"]) == [False, False, True]
    followups = client.get(f"/followup?alert={curve['name']}&format=csv").get_data(as_text=True)
    assert pd.read_csv(io.StringIO(followups))["limit"].dtype == bool
    assert Table.read(io.StringIO(followups), format="pandas.csv")["limit"].dtype == bool


@pytest.mark.parametrize(
    "method, url",
    [
        ("get", "/alerts"),
        ("get", "/followup"),
        ("get", "/alerts/{key}/lightcurve"),
        ("post", "/jobs/status"),
    ],
)
def test_unknown_format_or_accept_is_406_listing_the_formats(client, curve, method, url):
    url = url.format(key=lightcurve_url(client, curve["name"]).split("/")[1])
    call = getattr(client, method)
    body = {"json": {"ids": []}} if method == "post" else {}
    for kwargs in (
        {"query_string": {"format": "xml"}},
        {"query_string": {"outputFormat": "votable2"}},
        {"headers": {"Accept": "image/png"}},
        {"headers": {"Accept": "text/plain, application/xml;q=0.5"}},
    ):
        resp = call(url, **kwargs, **body)
        assert resp.status_code == 406, (url, kwargs)
        got = resp.get_json()
        assert {"votable", "ecsv", "fits", "json"} <= set(got["formats"])
        assert got["formats"]["votable"] == "application/x-votable+xml" and got["error"]
    # what browsers and curl send still works
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert call(url, headers={"Accept": browser}, **body).status_code == 200
    assert call(url, headers={"Accept": "*/*"}, **body).status_code == 200


def test_errors_of_table_requests_are_json(client):
    resp = client.get("/alerts/no-such-alert/lightcurve?format=fits")
    assert resp.status_code == 404 and resp.get_json()["error"]
    resp = client.get("/alerts/no-such-alert/lightcurve", headers={"Accept": ACCEPT["votable"]})
    assert resp.status_code == 404 and resp.get_json()["error"]


def test_the_documented_reads_from_a_live_server(live_server, client, curve):
    """docs/api.md's one-liners, over HTTP from gunicorn."""
    base = f"{live_server}/{lightcurve_url(client, curve['name'])}"
    ecsv = Table.read(f"{base}?format=ecsv", format="ascii.ecsv")
    fits = Table.read(f"{base}?format=fits", format="fits", astropy_native=True)
    vot = Table.read(f"{base}?format=votable", format="votable")
    for t in (ecsv, fits, vot):
        assert t["mag"].unit == u.mag and list(t["limit"]) == [False, False, True]
    assert isinstance(ecsv["date_obs"], Time) and isinstance(fits["date_obs"], Time)
    lc = DALResults.from_result_url(f"{base}?format=votable")
    assert lc.fieldname_with_ucd("phot.mag") == "mag"
    assert len([r for r in lc if not r["limit"]]) == 2
    params = {p.name: p.value for p in lc.votable.get_first_table().params}
    assert params["ivorn"] == f"ivo://test/{curve['name']}" and params["dec"] == 45.0
    followups = f"{live_server}/followup?alert={quote(curve['name'])}&format=csv"
    assert Table.read(followups, format="pandas.csv")["limit"].dtype == bool
    by_converter = Table.read(followups, format="ascii.csv", converters={"limit": bool})
    assert sorted(by_converter["limit"]) == [False, False, True]


def test_the_alert_page_has_html_and_json_only(client, curve):
    key = lightcurve_url(client, curve["name"]).split("/")[1]
    assert client.get(f"/alerts/{key}?format=json").get_json()["name"] == curve["name"]
    resp = client.get(f"/alerts/{key}?format=votable")
    assert resp.status_code == 406 and set(resp.get_json()["formats"]) == {"html", "json"}


@pytest.mark.parametrize("fmt", ["votable", "ecsv", "fits"])
def test_missing_values_stay_missing(fmt):
    """A failed job has no magnitude and no limit: masked, never 0 or True (FITS, which has no
    null boolean, says False)."""
    from web.tables import TableInfo, serialize

    rows = [
        {"job_id": "a", "status": "failed", "mag": None, "limit": None, "npoints": None,
         "date_obs": None, "mjd": None, "error": "no reference stars"},
        {"job_id": "b", "status": "succeeded", "mag": 18.25, "limit": True, "npoints": 40,
         "date_obs": "2023-02-25T12:00:00.000Z", "mjd": 60000.5, "error": None},
    ]  # fmt: skip
    body = serialize(rows, list(rows[0]), fmt, TableInfo("jobs", {"pending": 0}))
    t = (
        Table.read(body.decode(), format="ascii.ecsv")
        if fmt == "ecsv"
        else Table.read(io.BytesIO(body), format=fmt)
    )
    assert np.ma.is_masked(t["mag"][0]) and t["mag"][1] == 18.25
    assert np.ma.is_masked(t["npoints"][0]) and t["npoints"][1] == 40
    assert np.ma.is_masked(t["mjd"][0]) and t["mjd"][1] == 60000.5
    assert bool(t["limit"][1]) is True
    assert (not t["limit"][0]) if fmt == "fits" else np.ma.is_masked(t["limit"][0])


def test_a_job_has_html_and_json_only(client, curve):
    job_id = client.get(f"/followup?alert={curve['name']}&format=json").get_json()["items"][0][
        "job_id"
    ]
    assert client.get(f"/jobs/{job_id}?outputFormat=json").get_json()["job_id"] == job_id
    for kwargs in ({"query_string": {"format": "fits"}}, {"headers": {"Accept": "image/png"}}):
        resp = client.get(f"/jobs/{job_id}", **kwargs)
        assert resp.status_code == 406 and set(resp.get_json()["formats"]) == {"html", "json"}


def test_the_table_module_loads_astropy_only_for_a_table():
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, web.tables, web.listing; print('astropy' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
