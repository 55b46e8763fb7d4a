"""Hostile text in paths, headers, names, `next` and CSV exports: a clear 4xx, never a 500,
never an off-site redirect, never a spreadsheet formula."""

from __future__ import annotations

import csv
import io

import pytest

from db.models import Followup
from db.session import session_scope
from tests.helpers import DATA, add_alert

FRAME = (DATA / "gaia-demo" / "frame.cat").read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/%00",
        "/jobs/%00?outputFormat=json",
        "/jobs/ab%0D%0Acd",
        "/alerts/%00",
        "/alerts/%00/lightcurve?format=csv",
        "/alerts/%00/lightcurve.png",
        "/alerts/a%0Ab",
        "/jobs/x%1B/plot.png",
    ],
)
def test_control_characters_in_paths_are_400(client, path):
    resp = client.get(path, headers={"Accept": "application/json"})
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert "control character" in resp.get_data(as_text=True)


def test_nul_in_query_is_400(client):
    assert client.get("/alerts?q=a%00b&format=json").status_code == 400


def test_control_characters_in_headers_are_400(client):
    resp = client.get("/healthz", headers={"X-Probe": "a\x00b"})
    assert resp.status_code == 400
    assert client.get("/healthz", headers={"X-Probe": "a\tb"}).status_code == 200
    utf8_as_wsgi_gives_it = "5 €".encode().decode("latin-1")  # bytes 0x80-0x9f are not controls
    assert client.get("/healthz", headers={"X-Probe": utf8_as_wsgi_gives_it}).status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.com",
        "//evil.com",
        "/\\evil.com",
        "\\\\evil.com",
        "/a\nb",
        "/a\r\nLocation: https://evil.com",
        "https://evil.com/",
        "/ /evil.com",
    ],
)
def test_login_next_only_local_paths(make, client, target):
    page = client.get("/login", query_string={"next": target})
    assert page.status_code in (200, 400)
    assert "evil.com" not in page.get_data(as_text=True)
    _, key = make.observatory()
    resp = client.post("/login", data={"hashtag": key, "next": target})
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/"


def test_login_next_keeps_local_path(make, client):
    _, key = make.observatory()
    resp = client.post("/login", data={"hashtag": key, "next": "/alerts?q=x"})
    assert resp.headers["Location"] == "/alerts?q=x"


@pytest.mark.parametrize(
    "field,value",
    [
        ("name", "Bad\r\nName"),
        ("name", "Bad\x00Name"),
        ("name", "Bad\tName"),
        ("EventID", "ivo://bad\nivorn"),
        ("url", "https://example.org/\r\nX: y"),
    ],
)
def test_newevent_refuses_control_characters(client, observatory, make, field, value):
    form = {
        "hashtag": observatory["hashtag"],
        "EventID": f"ivo://hyg/{make.token()}",
        "name": f"Hyg{make.token()}",
        "ra": "10",
        "dec": "20",
        "outputFormat": "json",
    }
    form[field] = value
    resp = client.post("/newevent", data=form)
    assert resp.status_code in (400, 422), resp.get_data(as_text=True)
    assert resp.get_json()["error"]


def test_cli_refuses_name_with_line_break(runner):
    args = ["alert", "add", "ivo://hyg/cli", "--name", "Two\nLines", "--ra", "1", "--dec", "2"]
    out = runner.invoke(args=args)
    assert out.exit_code != 0 and "control character" in out.output


def test_csv_import_refuses_control_characters(runner, tmp_path):
    f = tmp_path / "alerts.csv"
    f.write_text('#Name,Date,RaDeg,DecDeg,Comment\nGaiaHyg1,2020-01-01,10,20,"a\x1bb"\n')
    out = runner.invoke(args=["alert", "import-csv", str(f)])
    assert out.exit_code != 0 and "control character" in out.output
    f.write_text('#Name,Date,RaDeg,DecDeg,Comment\n"Gaia\rHyg2",2020-01-01,10,20,ok\n')
    out = runner.invoke(args=["alert", "import-csv", str(f)])
    assert out.exit_code != 0 and "control character" in out.output


def test_upload_comment_with_escape_is_422(client, observatory, make):
    name = f"HygU{make.token()}"
    add_alert(client.application, f"ivo://hyg/{name}", name, 10.0, 20.0)
    form = {
        "hashtag": observatory["hashtag"],
        "EventID": name,
        "MJD": "60000",
        "comment": "x\x1b[31m",
        "outputFormat": "json",
        "sexCat": (io.BytesIO(FRAME), "frame.cat"),
    }
    resp = client.post("/upload", data=form, content_type="multipart/form-data")
    assert resp.status_code == 422 and "comment" in resp.get_json()["error"]


def test_old_alert_with_line_break_downloads_its_csv(make, client):
    """An alert stored before names were checked still gets a well-formed CSV download."""
    name = make.alert(f"Old\r\nX-Injected: 1 {make.token()}")
    from urllib.parse import quote

    resp = client.get(f"/alerts/{quote(name)}/lightcurve?format=csv")
    # the name itself is refused in a path (control characters): the list export must still work
    assert resp.status_code == 400
    resp = client.get("/alerts?format=csv&per_page=500")
    assert resp.status_code == 200 and "X-Injected" not in "".join(resp.headers.keys())


def test_csv_exports_neutralise_formulas(make, client):
    tag = make.token()
    obs, _ = make.observatory(f"@Obs{tag}")
    alert = make.alert(f"=HYPERLINK{tag}")
    make.point(alert, obs, 59000.0, -1.5, filt="+V")
    make.point(alert, obs, 59001.0, 17.0, limit=True, filt="V")
    with session_scope() as s:
        for f in s.query(Followup).filter(Followup.mjd == 59000.0):
            if f.mag == -1.5:
                f.comment = "-2+3 =cmd|' /C calc'!A0"

    text = client.get(f"/alerts/{alert}/lightcurve?format=csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["observatory"] == f"'@Obs{tag}" and rows[0]["filter"] == "'+V"
    assert rows[0]["mag"] == "-1.5"  # numbers are data, kept as they are
    assert rows[1]["magerr"] == "-1" or rows[1]["magerr"] == "-1.0"

    text = client.get(f"/followup?alert={alert}&format=csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    by_mjd = {r["mjd"]: r for r in rows}
    assert by_mjd["59000.0"]["alert"] == f"'=HYPERLINK{tag}"
    assert by_mjd["59000.0"]["comment"].startswith("'-2+3")
    assert by_mjd["59000.0"]["mag"] == "-1.5"

    text = client.get(f"/alerts?q=HYPERLINK{tag}&format=csv").get_data(as_text=True)
    assert next(csv.DictReader(io.StringIO(text)))["name"] == f"'=HYPERLINK{tag}"
