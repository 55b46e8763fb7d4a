"""Every refusal says its true reason, and never as a 500: repeated fields with NUL, too many form
parts, an over-large field, an over-long name, invisible characters in names, unsupported methods,
over-long URLs and headers; and every authenticated write is rate-limited."""

from __future__ import annotations

import io

import pytest

from tests.helpers import DATA

FRAME = (DATA / "gaia-demo" / "frame.cat").read_bytes()
JSON = {"Accept": "application/json"}


def test_nul_in_any_value_of_a_repeated_field_is_400(client):
    resp = client.get("/alerts?q=fine&q=a%00b&format=json")
    assert resp.status_code == 400 and "NUL" in resp.get_json()["detail"]
    resp = client.post("/jobs/status", json={"ids": ["ok", "a\u0000b"]})
    assert resp.status_code == 400, resp.get_data(as_text=True)
    resp = client.post("/jobs/status", json={"ids": ["a"], "states": {"a\u0000": "q\u0000"}})
    assert resp.status_code == 200  # states are only compared: nothing stores them


def test_unsupported_methods_are_405_with_allow(client):
    for path in ("/upload", "/healthz", "/followup/1", "/jobs/status"):
        resp = client.open(path, method="TRACE", headers=JSON)
        assert resp.status_code == 405, path
        allowed = {m.strip() for m in resp.headers["Allow"].split(",")}
        assert "TRACE" not in allowed and allowed, path
        assert resp.get_json()["error"] == "method not allowed"
    assert "POST" in client.open("/upload", method="TRACE").headers["Allow"]
    assert "DELETE" in client.open("/followup/1", method="TRACE").headers["Allow"]


def _multipart(parts: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "xYzZy"
    body = b"".join(
        b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
        % (boundary.encode(), name.encode(), value)
        for name, value in parts
    )
    return body + b"--%s--\r\n" % boundary.encode(), f"multipart/form-data; boundary={boundary}"


def test_too_many_form_parts_says_so(client, observatory):
    body, ctype = _multipart([(f"f{i}", b"1") for i in range(1000)])
    resp = client.post("/upload", data=body, content_type=ctype, headers=JSON)
    assert resp.status_code == 413
    assert resp.get_json()["error"] == "too many form parts"
    assert "200" in resp.get_json()["detail"]


def test_an_over_large_field_says_so(client, observatory):
    body, ctype = _multipart([("comment", b"x" * 2_000_000), ("outputFormat", b"json")])
    resp = client.post("/upload", data=body, content_type=ctype, headers=JSON)
    assert resp.status_code == 413
    assert resp.get_json()["error"] == "form field too large"
    assert (
        "MB" in resp.get_json()["detail"] and "uploads are limited" not in resp.get_json()["detail"]
    )


def test_an_over_large_upload_still_says_upload(client, app, observatory, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 100_000)
    form = {"hashtag": observatory["hashtag"], "sexCat": (io.BytesIO(b"x" * 200_000), "f.cat")}
    resp = client.post("/upload", data=form, headers=JSON)
    assert resp.status_code == 413 and resp.get_json()["error"] == "upload too large"
    assert "0.1 MB" in resp.get_json()["detail"]


def _newevent(client, observatory, make, **fields):
    form = {
        "hashtag": observatory["hashtag"],
        "EventID": f"ivo://refusal/{make.token()}",
        "name": f"Ref{make.token()}",
        "ra": "10",
        "dec": "20",
        "outputFormat": "json",
        **fields,
    }
    return client.post("/newevent", data=form)


def test_an_over_long_name_says_too_long(client, observatory, make):
    resp = _newevent(client, observatory, make, name="N" * 10_000)
    assert resp.status_code == 422
    assert resp.get_json()["error"] == "name is too long (10000 characters)"
    resp = _newevent(client, observatory, make, name="")
    assert resp.get_json()["error"] == "name is required"


@pytest.mark.parametrize(
    "name", ["abc\u202egnp.exe", "Gaia\u200b16aye", "\ufeffGaia", "Ga\u2066ia\u2069", "Gai\u00ada"]
)
def test_invisible_format_characters_are_refused_in_names(client, observatory, make, name):
    resp = _newevent(client, observatory, make, name=name)
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert "invisible formatting character (U+" in resp.get_json()["error"]


def test_accented_and_non_latin_names_are_kept(client, observatory, make):
    for name in (f"Ésa {make.token()}", f"天体 {make.token()}"):
        assert _newevent(client, observatory, make, name=name).status_code == 201


def test_an_over_long_url_is_a_json_414(client):
    resp = client.get("/alerts?format=json&q=" + "%C3%A9" * 1400)
    assert resp.status_code == 414
    assert resp.get_json()["error"].startswith("URL too long")


def test_an_over_large_header_is_a_json_431(client):
    resp = client.get("/healthz", headers={"X-Big": "a" * 9000})
    assert resp.status_code == 431 and resp.is_json
    assert "X-Big" in resp.get_json()["error"]


def test_withdrawing_is_rate_limited_per_key(app, client, make, monkeypatch):
    monkeypatch.setitem(app.config, "RATE_LIMIT", "2 per minute")
    obs, key = make.observatory()
    alert = make.alert()
    point = make.point(alert, obs, 59000.0, 15.0)
    auth = {"Authorization": f"Token {key}", **JSON}
    statuses = [client.delete(f"/followup/{point}", headers=auth).status_code for _ in range(3)]
    assert statuses == [204, 204, 429]
    _, other = make.observatory()
    other_auth = {"Authorization": f"Token {other}", **JSON}
    assert client.delete(f"/followup/{point}", headers=other_auth).status_code == 403


def test_observatory_names_refuse_invisible_characters(runner):
    out = runner.invoke(args=["observatory", "add", "Obs\u202eevil", "--lon", "1", "--lat", "2"])
    assert out.exit_code != 0 and "invisible formatting character (U+202E" in out.output
