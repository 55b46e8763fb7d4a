"""Stored data never turns into script or maths: alert URLs are http(s) only (on the way in and
on the way out), the pages run under a CSP with no inline script or style, and names reach
matplotlib as plain text."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from db.models import Alert
from db.session import session_scope

BAD_URLS = ("javascript:alert(document.domain)", " JavaScript:alert(1)", "data:text/html,x", "//x")


def _newevent(client, hashtag: str, name: str, url: str, **extra):
    data = {"hashtag": hashtag, "EventID": f"ivo://x/{name}", "name": name, "ra": "1", "dec": "2"}
    return client.post("/newevent", data={**data, "url": url, "outputFormat": "json", **extra})


@pytest.mark.parametrize("url", BAD_URLS)
def test_newevent_refuses_non_web_urls(client, observatory, make, url):
    name = f"Xss{make.token()}"
    resp = _newevent(client, observatory["hashtag"], name, url)
    assert resp.status_code == 422
    assert "http" in resp.get_json()["error"]
    assert client.get(f"/alerts/{name}?format=json").status_code == 404


def test_newevent_form_refuses_a_javascript_url(client, observatory, make):
    make.login(client, observatory["hashtag"])
    name = f"Xss{make.token()}"
    resp = client.post(
        "/newevent",
        data={
            "outputFormat": "html",
            "EventID": f"ivo://x/{name}",
            "name": name,
            "ra": "1",
            "dec": "2",
            "url": "javascript:alert(1)",
        },
    )
    assert resp.status_code == 422
    assert "url must be an http(s) address" in resp.get_data(as_text=True)


def test_newevent_keeps_a_web_url(client, observatory, make):
    name = f"Ok{make.token()}"
    resp = _newevent(client, observatory["hashtag"], name, "https://example.org/a?b=1")
    assert resp.status_code == 201
    assert (
        client.get(f"/alerts/{name}?format=json").get_json()["url"] == "https://example.org/a?b=1"
    )


def test_cli_refuses_a_javascript_url(runner, make):
    name = f"Cli{make.token()}"
    args = ["alert", "add", f"ivo://x/{name}", "--name", name, "--ra", "1", "--dec", "2"]
    result = runner.invoke(args=[*args, "--url", "javascript:alert(1)"])
    assert result.exit_code != 0 and "http(s)" in result.output
    assert runner.invoke(args=[*args, "--url", "https://example.org"]).exit_code == 0


def test_csv_import_makes_only_web_urls_whatever_the_name(runner, tmp_path, make):
    name = f'Odd{make.token()} "a/b"<x>'
    f = tmp_path / "alerts.csv"
    f.write_text(
        "#Name,Date,RaDeg,DecDeg,AlertMag,HistoricMag,HistoricStdDev,Class,Published,Comment,TNSid\n"
        f'"{name.replace(chr(34), chr(34) * 2)}",2016-08-05,1.0,2.0,15,,,,,,\n'
    )
    result = runner.invoke(args=["alert", "import-csv", str(f)])
    assert result.exit_code == 0, result.output
    with session_scope() as s:
        url = s.scalar(select(Alert.url).where(Alert.name == name))
    assert url.startswith("https://gsaweb.ast.cam.ac.uk/alerts/alert/")
    assert not re.search(r'[\s"<>]', url) and "%2F" in url


def test_a_stored_javascript_url_is_never_linked(client, make):
    """Rows stored before URLs were checked: the page and the JSON drop the URL."""
    name = make.alert(url="javascript:alert(document.domain)")
    html = client.get(f"/alerts/{name}").get_data(as_text=True)
    assert "javascript:" not in html
    assert client.get(f"/alerts/{name}?format=json").get_json()["url"] is None
    listed = client.get(f"/alerts?q={name}&format=json").get_json()["items"][0]
    assert listed["url"] is None


def test_csp_allows_no_inline_script_or_style(client, make):
    csp = client.get("/").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-inline'" not in directives.get("style-src", directives["default-src"])
    name = make.alert()
    for path in ("/", "/alerts", f"/alerts/{name}", "/followup", "/login", "/no-such-page"):
        html = client.get(path).get_data(as_text=True)
        assert "<style" not in html and " style=" not in html, path
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path


def test_names_with_dollars_plot_as_text(client, make):
    """`UX$^$` is a name, not mathtext: the light curve renders (it was a 500)."""
    obs, _ = make.observatory(f"Obs $^$ {make.token()}")
    name = make.alert(f"UX$^${make.token()}")
    make.point(name, obs, 60000.5, 15.0, filt="$x^$")
    make.point(name, obs, 60001.5, 18.0, limit=True)
    resp = client.get(f"/alerts/{name}/lightcurve.png")
    assert resp.status_code == 200 and resp.data[:8] == b"\x89PNG\r\n\x1a\n"
