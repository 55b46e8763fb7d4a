"""Alert keys for any name, UTC dates beside MJDs, sortable and filterable lists, cached light
curves with validators, the interactive light curve's assets, and the job page."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import urlsplit

import pytest

from tests.helpers import DATA
from web.dates import date_obs, mjd_of

ODD_NAMES = ("SN 2024/abc", "UX$^$", 'it\'s "quoted"', "Ωmega–ünïcode", "12-plain", "a%2Fb?x#y")


@pytest.mark.parametrize("odd", ODD_NAMES)
def test_every_alert_is_reachable_from_its_url_page(client, make, odd):
    """The bug: a name with '/' was listed but its page was a 404."""
    tag = make.token()
    name = make.alert(f"{odd} {tag}")
    obs, _ = make.observatory()
    make.point(name, obs, 60000.5, 15.0)
    (item,) = client.get(f"/alerts?q={tag}&format=json").get_json()["items"]
    path = urlsplit(item["url_page"]).path
    page = client.get(path + "?format=json")
    assert page.status_code == 200 and page.get_json()["name"] == name
    for suffix in ("/lightcurve?format=csv", "/lightcurve.png", "/lightcurve.bokeh.json"):
        assert client.get(path + suffix).status_code == 200, suffix
    html = client.get(f"/alerts?q={tag}").get_data(as_text=True)
    assert f'href="{path}"' in html


def test_plain_names_keep_their_old_links(client, make):
    name = make.alert(f"Gaia{make.token()}")
    item = client.get(f"/alerts?q={name}&format=json").get_json()["items"][0]
    assert urlsplit(item["url_page"]).path == f"/alerts/{name}"
    assert client.get(f"/alerts/{name.lower()}?format=json").get_json()["name"] == name
    assert client.get("/alerts/1-no-such-slug?format=json").status_code == 404


def test_date_obs_beside_mjd_everywhere(client, make):
    obs, _ = make.observatory()
    name = make.alert()
    make.point(name, obs, 60000.5, 15.0)
    lc = client.get(f"/alerts/{name}/lightcurve?format=json").get_json()["items"][0]
    assert lc["date_obs"] == "2023-02-25T12:00:00.000Z"
    rows = list(csv.DictReader(io.StringIO(client.get(f"/followup?alert={name}&format=csv").text)))
    assert rows[0]["date_obs"] == "2023-02-25T12:00:00.000Z" and rows[0]["mjd"] == "60000.5"
    item = client.get(f"/alerts?q={name}&format=json").get_json()["items"][0]
    assert item["last_date_obs"] == "2023-02-25T12:00:00.000Z"
    job = client.get(f"/followup?alert={name}&format=json").get_json()["items"][0]
    assert client.get(f"/jobs/{job['job_id']}?format=json").get_json()["date_obs"] is not None
    assert "2023-02-25 12:00:00" in client.get(f"/alerts/{name}").text


def test_dates_convert_both_ways():
    assert mjd_of("2023-02-25T12:00:00Z") == 60000.5
    assert mjd_of("2023-02-25T13:00:00+01:00") == 60000.5
    assert mjd_of("2023-02-25") == 60000.0
    assert mjd_of("2460001.0") == 60000.5  # a JD
    assert mjd_of(" 60000.5 ") == 60000.5
    assert date_obs(mjd_of("2016-08-05T11:21:22.500")) == "2016-08-05T11:21:22.500Z"
    with pytest.raises(ValueError, match="neither an MJD"):
        mjd_of("yesterday")


@pytest.fixture()
def listed(make) -> dict:
    tag = make.token()
    north, _ = make.observatory(f"North {tag}")
    south, _ = make.observatory(f"South {tag}")
    name = make.alert(f"List{tag}", published="2024-01-02", url="https://example.org")
    make.point(name, north, 60010.0, 16.0, filt="V", survey="APASS")
    make.point(name, south, 60011.0, 14.0, filt="G", survey="GaiaDR3")
    make.point(name, north, 60012.0, 15.0, filt="r", survey="APASS")
    return {"tag": tag, "name": name, "north": north, "south": south}


def test_followup_list_sorts_and_filters(client, listed):
    base = f"/followup?alert={listed['name']}&format=json"
    mags = [f["mag"] for f in client.get(base + "&sort=mag").get_json()["items"]]
    assert mags == [14.0, 15.0, 16.0]
    mags = [f["mag"] for f in client.get(base + "&sort=-mag").get_json()["items"]]
    assert mags == [16.0, 15.0, 14.0]
    assert client.get(base + "&band=g").get_json()["total"] == 1  # substring, any case
    assert client.get(base + "&survey=apa").get_json()["total"] == 2
    assert client.get(base + f"&observatory=south {listed['tag']}").get_json()["total"] == 1
    resp = client.get(base + "&sort=password")
    assert resp.status_code == 422 and "one of mjd, alert" in resp.get_json()["detail"]


def test_alert_list_filters_by_band_survey_and_observatory(client, listed, make):
    other = make.alert(f"List{listed['tag']}x")
    make.point(other, listed["north"], 60020.0, 17.0, filt="R", survey="Landolt")
    base = f"/alerts?q=List{listed['tag']}&format=json"

    def names(query: str) -> list[str]:
        return sorted(a["name"] for a in client.get(base + query).get_json()["items"])

    assert names("") == sorted([listed["name"], other])
    assert names("&band=g") == [listed["name"]]  # G, any case
    assert names("&survey=land") == [other]
    assert names(f"&observatory=south {listed['tag']}") == [listed["name"]]
    assert names(f"&observatory=north {listed['tag']}") == sorted([listed["name"], other])


def test_alert_list_sorts_and_shows_sexagesimal(client, make):
    tag = make.token()
    for i, mag in enumerate((17.0, 15.0, 16.0)):
        make.alert(f"Sort{tag}{i}", alert_mag=mag)
    items = client.get(f"/alerts?q=Sort{tag}&sort=alert_mag&format=json").get_json()["items"]
    assert [a["alert_mag"] for a in items] == [15.0, 16.0, 17.0]
    assert items[0]["ra_hms"] == "08:00:00.00" and items[0]["dec_dms"] == "+45:00:00.0"
    html = client.get(f"/alerts?q=Sort{tag}&sort=alert_mag").text
    assert 'aria-sort="ascending"' in html and "08:00:00.00" in html


def test_lists_show_comment_and_exposure_and_pager_twice(client, listed, make):
    from db.models import Followup
    from db.session import session_scope

    with session_scope() as s:
        for f in s.query(Followup).filter(Followup.mag == 16.0, Followup.filter == "V"):
            if f.alert.name == listed["name"]:
                f.comment, f.exptime = "thin clouds <b>", 120.0
    for path in (f"/followup?alert={listed['name']}", f"/alerts/{listed['name']}"):
        html = client.get(path).text
        assert "thin clouds &lt;b&gt;" in html and ">120<" in html, path
    html = client.get(f"/followup?alert={listed['name']}").text
    assert html.count('class="pager"') == 2


def test_a_page_past_the_end_is_404(client, listed):
    assert client.get(f"/followup?alert={listed['name']}&page=2&format=json").status_code == 404
    assert client.get(f"/alerts?q={listed['tag']}&page=5").status_code == 404
    assert client.get("/alerts?q=nothing-matches-this&page=1").status_code == 200


def test_light_curve_png_is_cached_and_revalidated(client, listed, make, app):
    url = f"/alerts/{listed['name']}/lightcurve.png"
    first = client.get(url)
    assert first.status_code == 200 and first.headers["Last-Modified"]
    etag = first.headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    since = {"If-Modified-Since": first.headers["Last-Modified"]}
    assert client.get(url, headers=since).status_code == 304
    make.point(listed["name"], listed["north"], 60013.0, 15.5)  # the curve changes
    second = client.get(url, headers={"If-None-Match": etag})
    assert second.status_code == 200 and second.headers["ETag"] != etag
    assert second.data != first.data
    alert_id = second.headers["ETag"].strip('"').split("-")[1]  # lc-<alert>-<version>-<code>
    cached = app.extensions["blobstore"].list(f"lightcurves/{alert_id}/")
    assert len([k for k in cached if k.endswith(".png")]) == 1  # the old version was removed


def test_interactive_light_curve_assets_come_from_calserv(client, listed):
    import bokeh

    html = client.get(f"/alerts/{listed['name']}").text
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert [s.split("?")[0] for s in scripts] == [
        f"/static/bokeh/{bokeh.__version__}/bokeh.min.js",
        "/static/lightcurve.js",
    ]
    assert re.fullmatch(r"/static/lightcurve\.js\?v=[0-9a-f]{12}", scripts[1])  # cache-busting
    js = client.get(scripts[0])
    assert js.status_code == 200 and b"Bokeh" in js.data[:2000]
    assert "max-age=31536000" in js.headers["Cache-Control"]
    assert client.get("/static/bokeh/0.0.1/bokeh.min.js").status_code == 404
    item = client.get(f"/alerts/{listed['name']}/lightcurve.bokeh.json").get_json()
    assert set(item) >= {"target_id", "root_id", "doc"}
    text = str(item)
    assert "magnitude (Vega: G, V; AB: r)" in text and "HoverTool" in text and "TapTool" in text
    assert "CustomJS" not in text  # nothing compiled at run time: the CSP allows no eval


def test_job_page_updates_by_script_not_meta_refresh(client, listed):
    job = client.get(f"/followup?alert={listed['name']}&format=json").get_json()["items"][0]
    html = client.get(f"/jobs/{job['job_id']}").text
    assert 'http-equiv="refresh"' not in html
    assert 'aria-live="polite"' in html and "Upload another frame" in html
    assert "created (UTC)" in html and "finished (UTC)" in html


def test_failed_job_page_shows_why(client, make):
    from db.models import Job, JobState
    from db.session import session_scope

    obs, _ = make.observatory()
    name = make.alert()
    make.point(name, obs, 60000.5, 15.0)
    with session_scope() as s:
        job = s.query(Job).join(Job.alert).filter_by(name=name).one()
        job.state, job.error, job_id = JobState.failed, "no reference stars <matched>", job.id
    html = client.get(f"/jobs/{job_id}").text
    assert 'id="error-log"' in html and "no reference stars &lt;matched&gt;" in html


def test_pages_have_landmarks_and_footer(client, app):
    html = client.get("/alerts").text
    assert '<nav aria-label="Main">' in html and 'href="#main"' in html
    assert 'aria-current="page"' in html and "API documentation" in html
    assert 'rel="icon"' in html and client.get("/static/favicon.svg").status_code == 200
    assert app.config["WTF_CSRF_TIME_LIMIT"] is None  # a form open all night still posts


def test_upload_form_reads_iso_dates_and_jds(client, observatory, make):
    make.login(client, observatory["hashtag"])
    name = make.alert()
    frame = DATA / "gaia-demo" / "frame.cat"
    form = {"outputFormat": "html", "EventID": name, "MJD": "2023-02-25T12:00:00"}
    resp = client.post("/submit", data={**form, "sexCat": (frame.open("rb"), frame.name)})
    assert resp.status_code == 303
    job = client.get(resp.headers["Location"] + "?format=json").get_json()
    assert job["mjd"] == 60000.5
    html = client.get("/submit").text
    assert 'id="mjd-preview"' in html and "/static/upload.js" in html


def test_concurrent_readers_of_a_changed_curve_render_it_once(app, listed, make, monkeypatch):
    """Sixteen readers of a light curve that just changed: one renders it, the others wait for
    that file instead of each rendering it again (the cost behind a stalled /healthz)."""
    from concurrent.futures import ThreadPoolExecutor

    from web import lightcurve_png

    renders = []
    real = lightcurve_png.plot_png

    def counted(*args, **kwargs):
        renders.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(lightcurve_png, "plot_png", counted)  # the page imports it when it draws
    make.point(listed["name"], listed["south"], 60030.0, 14.5)
    url = f"/alerts/{listed['name']}/lightcurve.png"
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: app.test_client().get(url), range(16)))
    assert {r.status_code for r in answers} == {200}
    assert len({r.data for r in answers}) == 1
    assert len(renders) == 1
