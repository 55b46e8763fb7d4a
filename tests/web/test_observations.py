"""One point per observation, and withdrawing points, against a real worker: the identity of an
observation is (observatory, alert, catalogue content, MJD); presentation options return the
existing job, calibration options replace the point and keep the old one as superseded."""

from __future__ import annotations

import json
import secrets

import pytest
from sqlalchemy import select

from db.models import Followup
from db.session import session_scope
from tests.helpers import DATA, add_alert, wait_job

GAIA = DATA / "gaia-demo"


@pytest.fixture()
def alert(app) -> str:
    truth = json.loads((GAIA / "truth.json").read_text())
    name = f"Obs{secrets.token_hex(3)}"
    add_alert(app, f"ivo://obs/{name}", name, truth["target_ra"], truth["target_dec"])
    return name


def upload(client, hashtag: str, alert: str, **fields):
    form = {
        "EventID": alert,
        "hashtag": hashtag,
        "MJD": "60100.25",
        "forceFilter": "no",
        "outputFormat": "json",
        "noPlot": "1",
    }
    form.update({k: str(v) for k, v in fields.items()})
    form["sexCat"] = ((GAIA / "frame.cat").open("rb"), "frame.cat")
    return client.post("/upload", data=form, content_type="multipart/form-data")


def points(client, alert: str) -> list[dict]:
    return client.get(f"/alerts/{alert}/lightcurve?format=json").get_json()["items"]


def stored(alert_point_ids: list[int]) -> dict[int, Followup]:
    with session_scope() as s:
        rows = s.scalars(select(Followup).where(Followup.id.in_(alert_point_ids))).all()
        return {f.id: (f.superseded_by, f.withdrawn_at) for f in rows}


def test_presentation_options_return_the_existing_job(client, worker, observatory, alert):
    """The bug: curl with noPlot=1 and the form with a plot made two jobs and two points."""
    first = upload(client, observatory["hashtag"], alert, noPlot=1).get_json()
    again = upload(client, observatory["hashtag"], alert, noPlot=0, comment="seen", wait=1)
    assert again.status_code in (200, 202)
    assert again.get_json()["job_id"] == first["job_id"]
    assert wait_job(client, first["job_id"])["status"] == "succeeded"
    assert len(points(client, alert)) == 1
    # another MJD is another observation
    other = upload(client, observatory["hashtag"], alert, MJD="60101.25").get_json()
    assert other["job_id"] != first["job_id"]
    assert wait_job(client, other["job_id"])["status"] == "succeeded"
    assert len(points(client, alert)) == 2


def test_changed_calibration_options_replace_the_point(client, worker, observatory, alert):
    first = upload(client, observatory["hashtag"], alert).get_json()
    old = wait_job(client, first["job_id"])
    second = upload(client, observatory["hashtag"], alert, matchDist=3).get_json()
    assert second["job_id"] != first["job_id"]
    new = wait_job(client, second["job_id"])
    assert new["status"] == "succeeded"
    (shown,) = points(client, alert)
    assert shown["followup_id"] == new["followup_id"]
    assert stored([old["followup_id"]])[old["followup_id"]] == (new["followup_id"], None)
    # sending the original again brings its point back (and supersedes the other)
    again = upload(client, observatory["hashtag"], alert).get_json()
    assert again["job_id"] == first["job_id"]
    (shown,) = points(client, alert)
    assert shown["followup_id"] == old["followup_id"]
    assert stored([new["followup_id"]])[new["followup_id"]][0] == old["followup_id"]


def test_withdraw_by_hashtag_in_form_query_or_header(client, worker, observatory, alert, make):
    ids = []
    for mjd in ("60200.1", "60200.2", "60200.3"):
        job = wait_job(
            client, upload(client, observatory["hashtag"], alert, MJD=mjd).get_json()["job_id"]
        )
        ids.append(job["followup_id"])
    key = observatory["hashtag"]
    _, stranger = make.observatory()
    assert client.delete(f"/followup/{ids[0]}").status_code == 401
    resp = client.delete(f"/followup/{ids[0]}?format=json", data={"hashtag": stranger})
    assert resp.status_code == 403 and "not your observation" in resp.get_json()["error"]
    assert client.delete(f"/followup/{ids[0]}", data={"hashtag": key}).status_code == 204
    assert client.delete(f"/followup/{ids[1]}?hashtag={key}").status_code == 204
    resp = client.delete(f"/followup/{ids[2]}", headers={"Authorization": f"Token {key}"})
    assert resp.status_code == 204
    assert client.delete(f"/followup/{ids[2]}?hashtag={key}").status_code == 204  # idempotent
    assert client.delete(f"/followup/999999999?hashtag={key}").status_code == 404
    assert points(client, alert) == []
    listed = client.get(f"/followup?alert={alert}&format=json").get_json()
    assert listed["total"] == 0
    assert client.get(f"/alerts/{alert}?format=json").get_json()["npoints"] == 0
    kept = stored(ids)  # still in the database, for audit
    assert len(kept) == 3 and all(withdrawn is not None for _, withdrawn in kept.values())


def test_withdraw_button_for_the_logged_in_owner_only(csrf_client, make):
    owner, key = make.observatory()
    other, _ = make.observatory()
    name = make.alert()
    mine = make.point(name, owner, 60300.5, 15.0)
    theirs = make.point(name, other, 60301.5, 15.5)
    make.login(csrf_client, key)
    html = csrf_client.get(f"/alerts/{name}").get_data(as_text=True)
    assert f"/followup/{mine}/withdraw" in html and f"/followup/{theirs}/withdraw" not in html
    token = make.csrf_token_of(html)
    assert csrf_client.post(f"/followup/{mine}/withdraw").status_code == 400  # no CSRF token
    resp = csrf_client.post(f"/followup/{theirs}/withdraw", data={"csrf_token": token})
    assert resp.status_code == 403
    resp = csrf_client.post(f"/followup/{mine}/withdraw", data={"csrf_token": token})
    assert resp.status_code == 303 and resp.headers["Location"] == f"/alerts/{name}"
    data = csrf_client.get(f"/alerts/{name}?format=json").get_json()
    assert [p["followup_id"] for p in data["lightcurve"]] == [theirs]
