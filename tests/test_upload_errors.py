"""Bad requests to /upload get a clear 4xx with a JSON error saying what to fix."""

from __future__ import annotations

import io

import pytest

from tests.helpers import DATA, add_alert

FRAME = (DATA / "gaia-demo" / "frame.cat").read_bytes()


@pytest.fixture(scope="module", autouse=True)
def known_alert(app):
    add_alert(app, "ivo://errors/1", "ErrorsAlert", 120.0, 45.0)


def post(client, **fields):
    form = {
        "EventID": "ivo://errors/1",
        "MJD": "59000.5",
        "outputFormat": "json",
        "sexCat": (io.BytesIO(FRAME), "frame.cat"),
    }
    form.update(fields)
    form = {k: v for k, v in form.items() if v is not None}
    return client.post("/upload", data=form, content_type="multipart/form-data")


def assert_error(resp, status: int, words: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"error", "detail"}
    assert words.lower() in (body["error"] + " " + (body["detail"] or "")).lower()
    return body


def test_missing_hashtag_is_401(client):
    assert_error(post(client), 401, "hashtag")


def test_wrong_hashtag_is_401(client):
    assert_error(post(client, hashtag="not-a-key"), 401, "unknown")


def test_unknown_alert_is_404_with_a_hint(client, observatory):
    body = assert_error(
        post(client, hashtag=observatory["hashtag"], EventID="ivo://nope"), 404, "newevent"
    )
    assert "ivo://nope" in body["error"]


def test_alert_found_by_name(client, observatory, worker):
    resp = post(client, hashtag=observatory["hashtag"], EventID="errorsalert", comment="by-name")
    assert resp.status_code == 202


def test_missing_catalogue_is_400(client, observatory):
    assert_error(post(client, hashtag=observatory["hashtag"], sexCat=None), 400, "sexCat")


def test_empty_catalogue_is_400(client, observatory):
    resp = post(client, hashtag=observatory["hashtag"], sexCat=(io.BytesIO(b""), "e.cat"))
    assert_error(resp, 400, "empty")


def test_binary_junk_is_422(client, observatory):
    junk = (io.BytesIO(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10), "x.png")
    assert_error(post(client, hashtag=observatory["hashtag"], sexCat=junk), 422, "SExtractor")


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("matchDist", "abc", "matchDist"),
        ("matchDist", "-1", "matchDist"),
        ("MJD", "yesterday", "MJD"),
        ("MJD", None, "MJD"),
        ("dryRun", "maybe", "dryRun"),
        ("forceFilter", "APASS", "forceFilter"),
        ("wait", "3600", "wait"),
        ("EventID", "", "EventID"),
    ],
)
def test_bad_fields_are_422(client, observatory, field, value, words):
    assert_error(post(client, hashtag=observatory["hashtag"], **{field: value}), 422, words)


def test_too_large_upload_is_413(app, observatory):
    app.config["MAX_CONTENT_LENGTH"], old = 4096, app.config["MAX_CONTENT_LENGTH"]
    try:
        resp = post(app.test_client(), hashtag=observatory["hashtag"])
    finally:
        app.config["MAX_CONTENT_LENGTH"] = old
    assert_error(resp, 413, "MB")


def test_unknown_job_is_404(client):
    assert_error(client.get("/jobs/doesnotexist?outputFormat=json"), 404, "job")


def test_html_errors_are_readable_pages(client):
    resp = client.post("/upload", data={"EventID": "x"}, headers={"Accept": "text/html"})
    assert resp.status_code == 401
    assert resp.mimetype == "text/html" and b"hashtag" in resp.data


def test_table_without_magnitude_column_is_422_naming_columns(client, observatory):
    table = b"# my frame\nRA DEC FLUX\n150.1 2.2 1000\n150.2 2.3 2000\n"
    resp = post(client, hashtag=observatory["hashtag"], sexCat=(io.BytesIO(table), "t.txt"))
    body = assert_error(resp, 422, "no magnitude column")
    assert "columns found: RA, DEC, FLUX" in body["error"]


def test_plain_csv_table_is_accepted(client, observatory, worker):
    table = b"ra,dec,mag\n120.0,45.0,15.0\n120.01,45.01,16.0\n"
    resp = post(client, hashtag=observatory["hashtag"], sexCat=(io.BytesIO(table), "t.csv"))
    assert resp.status_code == 202, resp.get_data(as_text=True)
