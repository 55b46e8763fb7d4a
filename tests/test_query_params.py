"""Seed-era scripts put the parameters (and the key) in the URL; newer ones send an
`Authorization: Token` header. Both give the same job as the form body, and no key reaches a log."""

from __future__ import annotations

import io
import secrets
import shutil
import subprocess
import time
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from db.models import Alert, Job
from db.session import session_scope
from tests.helpers import ACCESS_LOG, DATA, TMP, add_alert

FRAME = DATA / "gaia-demo" / "frame.cat"
EVENT = "ivo://query/1"


@pytest.fixture(scope="module")
def alert(app) -> str:
    add_alert(app, EVENT, "QueryParamAlert", 120.0, 45.0)
    return EVENT


def _post(client, url: str, form: dict, headers: dict | None = None):
    data = {**form, "sexCat": (io.BytesIO(FRAME.read_bytes()), "frame.cat")}
    return client.post(url, data=data, headers=headers, content_type="multipart/form-data")


SEED = {"EventID": EVENT, "MJD": "60001.25", "expTime": "30", "matchDist": "2", "noPlot": "1"}


def fresh_mjd() -> str:
    """Another observation for each test run: a new comment alone would return the same job."""
    return f"{50000 + secrets.randbelow(10**9) / 10**4:.4f}"


def test_query_string_upload_gives_the_same_job_as_the_body_form(client, observatory, alert):
    comment = f"query {secrets.token_hex(3)}"
    mjd = fresh_mjd()  # a new job for this test run
    seed = {**SEED, "MJD": mjd, "comment": comment, "hashtag": observatory["hashtag"]}
    by_url = _post(client, "/upload?" + urlencode({**seed, "outputFormat": "json"}), {})
    assert by_url.status_code == 202, by_url.get_data(as_text=True)
    by_body = _post(client, "/cgi/upload", {**seed, "outputFormat": "json"})
    assert by_body.status_code in (200, 202), by_body.get_data(as_text=True)
    assert by_body.get_json()["job_id"] == by_url.get_json()["job_id"]
    assert by_url.get_json()["mjd"] == float(mjd)
    with session_scope() as s:
        params = s.get(Job, by_url.get_json()["job_id"]).params
    assert params["comment"] == comment and params["exptime"] == 30.0
    assert observatory["hashtag"] not in repr(params)  # the key is never stored with the job


def test_the_body_wins_over_the_query_string(client, observatory, alert):
    url = "/upload?" + urlencode({"MJD": "1", "hashtag": "not-a-key", "comment": "url"})
    mjd = fresh_mjd()
    form = {**SEED, "MJD": mjd, "hashtag": observatory["hashtag"], "comment": "body"}
    resp = _post(client, url, {**form, "outputFormat": "json"})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    assert resp.get_json()["mjd"] == float(mjd)


@pytest.mark.parametrize("scheme", ["Token", "Bearer", "token"])
def test_authorization_header_carries_the_key(client, observatory, alert, scheme):
    form = {**SEED, "MJD": fresh_mjd(), "comment": "header", "outputFormat": "json"}
    headers = {"Authorization": f"{scheme} {observatory['hashtag']}"}
    assert _post(client, "/upload", form, headers).status_code == 202
    bad = _post(client, "/upload", form, {"Authorization": f"{scheme} abcdefgh.wrong"})
    assert bad.status_code == 401 and bad.get_json()["error"] == "unknown or revoked hashtag"
    basic = _post(client, "/upload", form, {"Authorization": "Basic dXNlcjpwdw=="})
    assert basic.status_code == 401 and basic.get_json()["error"] == "hashtag is missing"


def test_newevent_reads_the_query_string_and_the_token_header(client, observatory):
    name = f"Q{secrets.token_hex(3)}"
    params = {"EventID": f"ivo://query/{name}", "name": name, "ra": "10.5", "dec": "-5"}
    resp = client.post(
        "/cgi/newevent?" + urlencode(params),
        headers={"Authorization": f"Token {observatory['hashtag']}"},
    )
    assert resp.status_code == 201, resp.get_data(as_text=True)
    with session_scope() as s:
        assert s.scalars(select(Alert.ra).where(Alert.name == name)).one() == 10.5


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_a_key_in_the_url_never_reaches_a_log(live_server, observatory, alert):
    """The seed's curl call with everything in the URL, against the real gunicorn."""
    key = observatory["hashtag"]
    seed = {**SEED, "MJD": fresh_mjd(), "hashtag": key, "comment": f"live {secrets.token_hex(3)}"}
    url = f"{live_server}/upload?" + urlencode({**seed, "outputFormat": "json"})
    out = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", "-F", f"sexCat=@{FRAME}", url],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert out.endswith("\n202"), out
    # A wrong key in the URL: the error page must not echo it either; nor may a login redirect.
    wrong = f"{key[:8]}.{secrets.token_urlsafe(12)}"
    for path, code in ((f"/upload?hashtag={wrong}", "401"), (f"/newevent?hashtag={wrong}", "303")):
        page = subprocess.run(
            [
                "curl",
                "-s",
                "-w",
                "\n%{http_code}",
                "-X",
                (path.startswith("/up") and "POST") or "GET",
                f"{live_server}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        assert page.endswith(code) and wrong not in page, page
    deadline = time.monotonic() + 10
    while "/newevent" not in (log := ACCESS_LOG.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    line = next(line for line in log.splitlines() if "comment=live" in line)
    assert "hashtag=[redacted]" in line and "EventID=ivo" in line
    assert key not in log and key.split(".", 1)[1] not in log and wrong not in log
    assert key not in (TMP / "gunicorn.log").read_text()
