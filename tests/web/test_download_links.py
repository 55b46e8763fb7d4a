"""The download links of the HTML pages (the lists and the alert page's light curve, as measured
and with the offsets between observatories applied): CSV, VOTable, ECSV, FITS and JSON, each the
page's own URL with `format=`, keeping its filters, sort and page; each answers 200 with its media
type and holds the rows the page shows."""

from __future__ import annotations

import csv
import io
import json
import warnings
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from astropy.table import Table

from tests.web.conftest import login, make_alert, make_observatory, make_point, token
from web.negotiation import MEDIA_TYPES


class DownloadLinks(HTMLParser):
    """The links inside each `<span class="downloads">`: one list of (href, type) per span."""

    def __init__(self):
        super().__init__()
        self.spans: list[list[tuple[str, str]]] = []
        self.depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "span" and "downloads" in (a.get("class") or "").split():
            self.spans.append([])
            self.depth = 1
        elif tag == "span" and self.depth:
            self.depth += 1
        elif tag == "a" and self.depth:
            self.spans[-1].append((a["href"], a.get("type", "")))

    def handle_endtag(self, tag):
        if tag == "span" and self.depth:
            self.depth -= 1


def download_links(html: str) -> list[list[tuple[str, str]]]:
    parser = DownloadLinks()
    parser.feed(html)
    return parser.spans


def rows_of(fmt: str, body: bytes) -> int:
    """How many rows a download holds, read as its format's readers read it."""
    if fmt == "json":
        data = json.loads(body)
        return len(data.get("items", data.get("lightcurve", [])))
    if fmt == "csv":
        return len(list(csv.DictReader(io.StringIO(body.decode()))))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a spec violation astropy notices fails the test
        if fmt == "ecsv":
            return len(Table.read(body.decode(), format="ascii.ecsv"))
        return len(Table.read(io.BytesIO(body), format={"fits": "fits", "votable": "votable"}[fmt]))


@pytest.fixture(scope="module")
def data(app):
    """Three alerts of one tag with two points each from one observatory; the second alert has
    two more from another observatory on the same nights (so the page shows their offset)."""
    with app.app_context():
        tag = token()
        observatory, hashtag = make_observatory(f"DL {tag}")
        other, _ = make_observatory(f"Other {tag}")
        names = [make_alert(f"DL{tag}{k}") for k in range(3)]
        for k, name in enumerate(names):
            for i in range(2):
                make_point(name, observatory, 60500.0 + i + 0.1 * k, 15.0 + 0.1 * i, filt="R")
                if k == 1:
                    make_point(name, other, 60500.05 + i, 15.2 + 0.1 * i, filt="R")
    return {"tag": tag, "observatory": observatory, "hashtag": hashtag, "names": names}


def pages(data) -> list[tuple[str, str, list[dict], int]]:
    """(page URL with filters, sort and a page number; its data's path; what each group of links
    adds to the page's arguments besides `format`; rows each download holds)."""
    tag, alert = data["tag"], data["names"][1]
    return [
        (f"/alerts?q=DL{tag}&sort=-name&per_page=2&page=2", "/alerts", [{}, {}], 1),
        (f"/followup?observatory=DL+{tag}&band=R&sort=mjd&per_page=4&page=2", "/followup",
         [{}, {}], 2),
        ("/observatories?sort=-npoints&per_page=1&page=1", "/observatories", [{}, {}], 1),
        ("/jobs?state=succeeded&per_page=5&page=2", "/jobs", [{}, {}], 1),
        (f"/alerts/{alert}", f"/alerts/{alert}/lightcurve", [{}, {"aligned": ["1"]}], 4),
    ]  # fmt: skip


def test_every_download_link_keeps_the_page_and_answers_with_its_media_type(client, data):
    login(client, data["hashtag"])
    for url, path, extras, shown in pages(data):
        resp = client.get(url, headers={"Accept": "text/html"})
        assert resp.status_code == 200, url
        spans = download_links(resp.get_data(as_text=True))
        assert len(spans) == len(extras), url
        page_args = parse_qs(urlsplit(url).query)
        for links, extra in zip(spans, extras, strict=True):
            formats = {}
            for href, media in links:
                parts = urlsplit(href)
                args = parse_qs(parts.query)
                (fmt,) = args.pop("format")
                formats[fmt] = href
                assert media == MEDIA_TYPES[fmt][0], (url, href)
                assert parts.path == path and args == {**page_args, **extra}, (url, href)
            assert sorted(formats) == ["csv", "ecsv", "fits", "json", "votable"], url
            for fmt, href in formats.items():
                got = client.get(href)
                assert got.status_code == 200, (href, got.get_data(as_text=True)[:300])
                assert got.mimetype == MEDIA_TYPES[fmt][0], href
                assert rows_of(fmt, got.get_data()) == shown, href
                if fmt != "json":  # a download is saved under a name, not shown in the tab
                    name = got.headers["Content-Disposition"]
                    assert name.startswith("attachment;"), href
                    assert ("-aligned." in name) == bool(extra), href
                if extra and fmt == "json":
                    assert got.get_json()["aligned"] is True, href
