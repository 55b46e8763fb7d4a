"""A logged-in observer uploads a catalogue through the browser form and lands on the job page."""

from __future__ import annotations

import json

from tests.helpers import DATA, wait_job

GAIA = DATA / "gaia-demo"


def form(path, **fields):
    data = {
        "outputFormat": "html",
        "EventID": "",
        "MJD": "60999.85",
        "expTime": "60",
        "matchDist": "",
        "forceFilter": "no",
        "comment": "",
    }
    data.update(fields)
    data["sexCat"] = (path.open("rb"), path.name)
    return data


def test_upload_form_needs_the_csrf_token(csrf_client, observatory, make):
    make.login(csrf_client, observatory["hashtag"])
    page = csrf_client.get("/submit").get_data(as_text=True)
    token = make.csrf_token_of(page)
    assert 'enctype="multipart/form-data"' in page
    name = make.alert()
    resp = csrf_client.post("/submit", data=form(GAIA / "frame.cat", EventID=name, dryRun="1"))
    assert resp.status_code == 400
    resp = csrf_client.post(
        "/submit", data=form(GAIA / "frame.cat", EventID=name, dryRun="1", csrf_token=token)
    )
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/jobs/")


def test_form_errors_come_back_on_the_form(client, observatory, make):
    make.login(client, observatory["hashtag"])
    resp = client.post("/submit", data=form(GAIA / "frame.cat", EventID="NoSuchAlert"))
    assert resp.status_code == 404
    html = resp.get_data(as_text=True)
    assert "unknown alert" in html and 'value="NoSuchAlert"' in html
    resp = client.post("/submit", data=form(GAIA / "frame.cat", EventID=make.alert(), MJD="x"))
    assert (
        resp.status_code == 422
        and "MJD must be an MJD, a JD or an ISO 8601 date" in resp.get_data(as_text=True)
    )


def test_browsing_to_the_script_endpoint_shows_the_form(client):
    resp = client.get("/upload")
    assert resp.status_code == 303 and resp.headers["Location"] == "/submit"


def test_not_logged_in_goes_to_login(client, make):
    resp = client.post("/submit", data=form(GAIA / "frame.cat", EventID=make.alert()))
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login")


def test_uploaded_frame_becomes_a_point_of_the_light_curve(client, worker, observatory, make):
    truth = json.loads((GAIA / "truth.json").read_text())
    name = f"Sub{make.token()}"
    make.alert(name)
    from db.models import Alert
    from db.session import session_scope

    with session_scope() as s:  # the demo frame's target position
        a = s.query(Alert).filter_by(name=name).one()
        a.ra, a.dec = truth["target_ra"], truth["target_dec"]
    make.login(client, observatory["hashtag"])
    resp = client.post("/submit", data=form(GAIA / "frame.cat", EventID=name))
    assert resp.status_code == 303
    job_id = resp.headers["Location"].rsplit("/", 1)[1]
    result = wait_job(client, job_id)
    assert result["status"] == "succeeded", result
    page = client.get(resp.headers["Location"], headers={"Accept": "text/html"})
    assert "succeeded" in page.get_data(as_text=True)
    curve = client.get(f"/alerts/{name}/lightcurve?format=json").get_json()
    (point,) = curve["items"]
    assert abs(point["mag"] - truth["target_mag"]) <= 0.03
    assert point["followup_id"] == result["followup_id"]
    assert point["observatory"] == observatory["name"] and point["mjd"] == 60999.85
